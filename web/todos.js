// Todo lists and their todos: add, complete, due dates, delete, and a new order by drag and drop (HTML5
// drag events) or by the move buttons, which keyboard users reach too. Every new order is one
// `reorderTodos` call naming the whole list, as the API asks.

import { allNodes, gql } from "./api.js";
import { field, h } from "./dom.js";
import { isoDate, parseDate } from "./dates.js";

const TODO = "id title completed dueDate dueAt position";
const LISTS = "{ todoLists { id name color } }";
// One list's todos at a time: lists with their todos nested cost more than the server's complexity limit.
const TODOS = `query($list: ID!, $after: String) { todos(listId: $list, first: 200, after: $after) {
  edges { node { ${TODO} } } pageInfo { hasNextPage endCursor } } }`;

export class TodosView {
  constructor(root, { onError }) {
    Object.assign(this, { root, onError });
    this.lists = [];
    this.selected = null;
    this.dragged = null;
  }

  async show() {
    this.root.dataset.loaded = "false";
    await this.run(async () => {
      this.lists = (await gql(LISTS)).todoLists;
      if (!this.lists.some((l) => l.id === this.selected)) this.selected = this.lists[0]?.id ?? null;
      if (this.list) this.list.todos = await allNodes(TODOS, { list: this.selected }, (data) => data.todos);
      this.render();
      this.root.dataset.loaded = "true";
    });
  }

  get list() {
    return this.lists.find((l) => l.id === this.selected);
  }

  render() {
    const newList = h("input", { id: "new-list-name", type: "text", required: true, maxlength: "200" });
    const lists = h("nav", { class: "todo-lists", "aria-label": "Todo lists" },
      h("ul", {}, this.lists.map((list) => h("li", {},
        h("button", {
          type: "button",
          class: list.id === this.selected ? "selected" : "",
          "aria-current": list.id === this.selected ? "true" : null,
          dataset: { listId: list.id },
          onclick: () => { this.selected = list.id; this.show(); },
        }, list.name)))),
      h("form", { class: "inline", onsubmit: (e) => { e.preventDefault(); this.createList(newList.value); } },
        field("New list", newList), h("button", { type: "submit" }, "Add list")));
    this.root.replaceChildren(h("h2", {}, "Todos"), h("div", { class: "todos-layout" }, lists, this.renderList()));
  }

  renderList() {
    const list = this.list;
    if (!list) return h("p", { class: "muted" }, "Create a list to start.");
    const title = h("input", { id: "new-todo-title", type: "text", required: true, maxlength: "500" });
    const due = h("input", { id: "new-todo-due", type: "date" });
    const items = list.todos.map((todo, index) => this.renderTodo(todo, index, list.todos.length));
    this.ul = h("ul", { class: "todos", id: "todo-items", dataset: { listId: list.id, state: "saved" } }, items);
    return h("section", { class: "todo-list", "aria-label": list.name },
      h("h3", {}, list.name),
      h("form", { class: "inline", id: "new-todo", onsubmit: (e) => { e.preventDefault(); this.createTodo(title.value, due.value); } },
        field("New todo", title), field("Due", due), h("button", { type: "submit", class: "primary" }, "Add")),
      this.ul);
  }

  renderTodo(todo, index, count) {
    const overdue = !todo.completed && todo.dueDate && todo.dueDate < isoDate(new Date());
    const checkbox = h("input", { type: "checkbox", id: `done-${todo.id}`, checked: todo.completed,
      onchange: (e) => this.update(todo.id, { completed: e.target.checked }) });
    const dueInput = h("input", { type: "date", id: `due-${todo.id}`, value: todo.dueDate ?? "", class: overdue ? "overdue" : "",
      onchange: (e) => this.update(todo.id, { dueDate: e.target.value || null }) });
    const item = h("li", {
      class: `todo${todo.completed ? " completed" : ""}`,
      draggable: "true",
      dataset: { todoId: todo.id, title: todo.title },
      ondragstart: (e) => {
        this.dragged = todo.id;
        e.dataTransfer.effectAllowed = "move";
        e.dataTransfer.setData("text/plain", todo.id);
        item.classList.add("dragging");
      },
      ondragend: () => item.classList.remove("dragging"),
      ondragover: (e) => {
        if (!this.dragged || this.dragged === todo.id) return;
        e.preventDefault();
        item.dataset.drop = this.dropsBefore(e, item) ? "before" : "after";
      },
      ondragleave: () => delete item.dataset.drop,
      ondrop: (e) => {
        e.preventDefault();
        delete item.dataset.drop;
        const moved = this.dragged ?? e.dataTransfer.getData("text/plain");
        this.dragged = null;
        if (moved && moved !== todo.id) this.moveNextTo(moved, todo.id, this.dropsBefore(e, item));
      },
    },
    h("span", { class: "grip", "aria-hidden": "true" }, "⋮⋮"),
    checkbox,
    h("label", { for: checkbox.id, class: "title" }, todo.title),
    h("label", { for: dueInput.id, class: "visually-hidden" }, `Due date of ${todo.title}`),
    dueInput,
    h("button", { type: "button", class: "small", "aria-label": `Move ${todo.title} up`, disabled: index === 0,
      onclick: () => this.moveBy(todo.id, -1) }, "↑"),
    h("button", { type: "button", class: "small", "aria-label": `Move ${todo.title} down`, disabled: index === count - 1,
      onclick: () => this.moveBy(todo.id, 1) }, "↓"),
    h("button", { type: "button", class: "small danger", "aria-label": `Delete ${todo.title}`,
      onclick: () => this.remove(todo.id) }, "✕"));
    if (todo.dueDate && !todo.completed) item.title = `Due ${parseDate(todo.dueDate).toLocaleDateString()}`;
    return item;
  }

  /// The upper half of a todo drops before it, the lower half after.
  dropsBefore(event, item) {
    const box = item.getBoundingClientRect();
    return event.clientY < box.top + box.height / 2;
  }

  moveNextTo(movedId, targetId, before) {
    const ids = this.list.todos.map((t) => t.id).filter((id) => id !== movedId);
    const at = ids.indexOf(targetId) + (before ? 0 : 1);
    ids.splice(at, 0, movedId);
    return this.reorder(ids);
  }

  moveBy(id, step) {
    const ids = this.list.todos.map((t) => t.id);
    const from = ids.indexOf(id);
    const to = from + step;
    if (to < 0 || to >= ids.length) return;
    [ids[from], ids[to]] = [ids[to], ids[from]];
    return this.reorder(ids, `[aria-label="Move ${CSS.escape(this.list.todos[from].title)} ${step < 0 ? "up" : "down"}"]`);
  }

  async reorder(ids, refocus) {
    const list = this.list;
    // Shown at once in the new order; the server's answer replaces it.
    list.todos = ids.map((id) => list.todos.find((t) => t.id === id));
    this.render();
    this.ul.dataset.state = "saving";
    try {
      const data = await gql(`mutation($list: ID!, $ids: [ID!]!) { reorderTodos(listId: $list, todoIds: $ids) { ${TODO} } }`,
        { list: list.id, ids });
      list.todos = data.reorderTodos;
      this.render();
    } catch (error) {
      this.onError(error);
      // The order the server kept, not the one shown.
      await this.show();
    }
    if (refocus) this.ul.querySelector(refocus)?.focus();
  }

  async createList(name) {
    await this.run(async () => {
      const { createTodoList } = await gql("mutation($input: CreateTodoListInput!) { createTodoList(input: $input) { id } }",
        { input: { name } });
      this.selected = createTodoList.id;
    });
    await this.show();
    document.getElementById("new-todo-title")?.focus();
  }

  async createTodo(title, dueDate) {
    await this.run(() => gql("mutation($input: CreateTodoInput!) { createTodo(input: $input) { id } }",
      { input: { listId: this.selected, title, dueDate: dueDate || null } }));
    await this.show();
    document.getElementById("new-todo-title")?.focus();
  }

  async update(id, input) {
    await this.run(() => gql("mutation($id: ID!, $input: UpdateTodoInput!) { updateTodo(id: $id, input: $input) { id } }",
      { id, input }));
    await this.show();
  }

  async remove(id) {
    await this.run(() => gql("mutation($id: ID!) { deleteTodo(id: $id) }", { id }));
    await this.show();
  }

  async run(action) {
    try {
      await action();
    } catch (error) {
      this.onError(error);
    }
  }
}
