// The schema from introspection: the docs explorer, and which fields can be typed where (completion).

const TYPE_REF = "kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } }";

export const INTROSPECTION = `query PlaygroundIntrospection {
  __schema {
    queryType { name } mutationType { name } subscriptionType { name }
    types {
      kind name description
      fields(includeDeprecated: true) {
        name description isDeprecated deprecationReason
        args { name description defaultValue type { ${TYPE_REF} } }
        type { ${TYPE_REF} }
      }
      inputFields { name description defaultValue type { ${TYPE_REF} } }
      enumValues(includeDeprecated: true) { name description isDeprecated }
      possibleTypes { name }
    }
  }
}`;

export class Schema {
  constructor(introspection) {
    const schema = introspection.__schema;
    this.types = new Map(schema.types.map((t) => [t.name, t]));
    this.roots = {
      query: schema.queryType?.name,
      mutation: schema.mutationType?.name,
      subscription: schema.subscriptionType?.name,
    };
  }

  type(name) {
    return this.types.get(name);
  }

  /// The fields that may be selected on type `name` (with `__typename`).
  fields(name) {
    const type = this.type(name);
    const fields = type?.fields ?? [];
    return [...fields, { name: "__typename", type: { kind: "NON_NULL", ofType: { kind: "SCALAR", name: "String" } }, args: [] }];
  }
}

/// `[Foo!]!` for a type reference.
export function typeString(ref) {
  if (!ref) return "";
  if (ref.kind === "NON_NULL") return `${typeString(ref.ofType)}!`;
  if (ref.kind === "LIST") return `[${typeString(ref.ofType)}]`;
  return ref.name;
}

export function namedType(ref) {
  let current = ref;
  while (current && !current.name) current = current.ofType;
  return current?.name;
}

/// Names, punctuation and `...`, skipping strings and comments: enough to follow selection sets.
function tokens(text) {
  const out = [];
  const re = /#[^\n]*|"""[\s\S]*?(?:"""|$)|"(?:\\.|[^"\\\n])*"?|\.\.\.|[A-Za-z_][A-Za-z0-9_]*|[{}():@$!=\[\]]/g;
  let m;
  while ((m = re.exec(text))) {
    const t = m[0];
    if (t[0] === "#" || t[0] === '"') continue;
    out.push(t);
  }
  return out;
}

/// Where the cursor is: the type whose fields may be typed there (or null), and the word being typed.
export function completionContext(schema, text, cursor) {
  const before = text.slice(0, cursor);
  const prefix = /[A-Za-z_][A-Za-z0-9_]*$/.exec(before)?.[0] ?? "";
  const list = tokens(before.slice(0, before.length - prefix.length));
  const stack = [];
  let operation = "query";
  let pendingType = null; // from `fragment X on T` or `... on T`
  let lastField = null;
  let parens = 0;
  for (let i = 0; i < list.length; i++) {
    const t = list[i];
    if (t === "(") parens++;
    else if (t === ")") parens = Math.max(0, parens - 1);
    else if (parens > 0) continue;
    else if (t === "{") {
      let type = null;
      if (pendingType) type = pendingType;
      else if (stack.length === 0) type = schema.roots[operation] ?? null;
      else {
        const parent = stack[stack.length - 1];
        const field = parent && schema.fields(parent).find((f) => f.name === lastField);
        type = field ? namedType(field.type) : null;
      }
      stack.push(type);
      pendingType = null;
      lastField = null;
    } else if (t === "}") {
      stack.pop();
      lastField = null;
      // The operation ended: an anonymous `{` after it is a query again.
      if (stack.length === 0) operation = "query";
    } else if (stack.length === 0 && (t === "query" || t === "mutation" || t === "subscription")) {
      operation = t;
    } else if (t === "on" && (list[i - 1] === "..." || list[i - 2] === "fragment")) {
      pendingType = list[i + 1] ?? null;
      i++;
    } else if (t === "...") {
      lastField = null;
    } else if (/^[A-Za-z_]/.test(t) && list[i + 1] !== ":" && list[i - 1] !== "@" && list[i - 1] !== "$") {
      lastField = t;
    }
  }
  const inside = parens === 0 && stack.length > 0 ? stack[stack.length - 1] : null;
  return { typeName: inside, prefix };
}

/// Fields of the type at the cursor starting with the word being typed.
export function suggestions(schema, text, cursor) {
  if (!schema) return { prefix: "", items: [] };
  const { typeName, prefix } = completionContext(schema, text, cursor);
  if (!typeName) return { prefix, items: [] };
  const lower = prefix.toLowerCase();
  const items = schema
    .fields(typeName)
    .filter((f) => f.name.toLowerCase().startsWith(lower) && f.name !== prefix)
    .map((f) => ({ name: f.name, detail: typeString(f.type), hasArgs: (f.args ?? []).some((a) => a.type.kind === "NON_NULL") }));
  return { prefix, items };
}

/// The docs explorer: the root types first, then any type by following links; a search over type and
/// field names. Built with DOM nodes only (descriptions are text, never HTML).
export class DocsExplorer {
  constructor({ body, path, search }) {
    this.body = body;
    this.pathEl = path;
    this.search = search;
    this.schema = null;
    this.stack = [];
    search.addEventListener("input", () => this.render());
  }

  setSchema(schema) {
    this.schema = schema;
    this.stack = [];
    this.render();
  }

  unavailable(message) {
    this.schema = null;
    this.body.replaceChildren(el("p", "desc", message));
  }

  show(typeName) {
    if (!this.schema?.type(typeName)) return;
    this.stack.push(typeName);
    this.search.value = "";
    this.render();
  }

  render() {
    if (!this.schema) return;
    this.renderPath();
    const query = this.search.value.trim().toLowerCase();
    if (query) return this.renderSearch(query);
    const current = this.stack[this.stack.length - 1];
    if (current) return this.renderType(this.schema.type(current));
    const nodes = [el("h3", null, "Schema")];
    for (const [label, name] of Object.entries(this.schema.roots)) {
      if (!name) continue;
      const p = el("div", "field", `${label}: `);
      p.append(this.typeLink(name));
      nodes.push(p);
    }
    const named = [...this.schema.types.keys()].filter((n) => !n.startsWith("__")).sort();
    nodes.push(el("h3", null, "All types"));
    const ul = document.createElement("ul");
    for (const name of named) {
      const li = document.createElement("li");
      li.append(this.typeLink(name));
      ul.append(li);
    }
    nodes.push(ul);
    this.body.replaceChildren(...nodes);
  }

  renderPath() {
    const parts = [];
    const home = el("a", null, "Schema");
    home.addEventListener("click", () => {
      this.stack = [];
      this.render();
    });
    parts.push(home);
    this.stack.forEach((name, index) => {
      parts.push(document.createTextNode(" › "));
      const link = el("a", null, name);
      link.addEventListener("click", () => {
        this.stack = this.stack.slice(0, index + 1);
        this.render();
      });
      parts.push(link);
    });
    this.pathEl.replaceChildren(...parts);
  }

  renderType(type) {
    const nodes = [el("h3", null, `${type.kind.toLowerCase().replace("_", " ")} ${type.name}`)];
    if (type.description) nodes.push(el("p", "desc", type.description));
    for (const field of type.fields ?? []) nodes.push(this.fieldNode(field));
    for (const field of type.inputFields ?? []) nodes.push(this.fieldNode(field));
    for (const value of type.enumValues ?? []) {
      const node = el("div", "field", value.name);
      if (value.description) node.append(el("div", "desc", value.description));
      nodes.push(node);
    }
    if (type.possibleTypes?.length) {
      const node = el("div", "field", "possible types: ");
      type.possibleTypes.forEach((t, i) => {
        if (i) node.append(", ");
        node.append(this.typeLink(t.name));
      });
      nodes.push(node);
    }
    this.body.replaceChildren(...nodes);
  }

  fieldNode(field) {
    const node = el("div", "field", field.name);
    node.dataset.field = field.name;
    if (field.args?.length) {
      node.append("(");
      field.args.forEach((arg, i) => {
        if (i) node.append(", ");
        node.append(el("span", "args", `${arg.name}: `), this.refLink(arg.type));
        if (arg.defaultValue != null) node.append(` = ${arg.defaultValue}`);
      });
      node.append(")");
    }
    node.append(": ", this.refLink(field.type));
    if (field.defaultValue != null) node.append(` = ${field.defaultValue}`);
    const description = [field.description, field.isDeprecated ? `Deprecated: ${field.deprecationReason ?? ""}` : null]
      .filter(Boolean)
      .join("\n");
    if (description) node.append(el("div", "desc", description));
    return node;
  }

  renderSearch(query) {
    const nodes = [];
    for (const type of this.schema.types.values()) {
      if (type.name.startsWith("__")) continue;
      if (type.name.toLowerCase().includes(query)) {
        const node = el("div", "field");
        node.append(this.typeLink(type.name));
        nodes.push(node);
      }
      for (const field of type.fields ?? []) {
        if (!field.name.toLowerCase().includes(query)) continue;
        const node = el("div", "field");
        node.append(this.typeLink(type.name), `.${field.name}: `, this.refLink(field.type));
        nodes.push(node);
      }
    }
    if (!nodes.length) nodes.push(el("p", "desc", "Nothing matches."));
    this.body.replaceChildren(...nodes);
  }

  /// The type reference with its named type as a link.
  refLink(ref) {
    const name = namedType(ref);
    const text = typeString(ref);
    const span = document.createElement("span");
    const at = text.indexOf(name);
    span.append(text.slice(0, at), this.typeLink(name), text.slice(at + name.length));
    return span;
  }

  typeLink(name) {
    const link = el("a", null, name);
    link.addEventListener("click", () => this.show(name));
    return link;
  }
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text != null) node.textContent = text;
  return node;
}
