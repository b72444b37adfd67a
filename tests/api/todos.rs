//! Todo lists and todos over HTTP: CRUD, validation, ordering, moves, reorder (also concurrent),
//! filters and pagination, isolation between users, encryption at rest.

use std::collections::HashSet;

use futures::future::join_all;
use sea_orm::{Database, FromQueryResult, JsonValue, Statement};
use serde_json::{Value, json};

use crate::helpers::{TestApp, error_code};

/// Pages of `todos_page`'s selection stay under the complexity limit (2000) up to this size.
const MAX_PAGE_WITHIN_COMPLEXITY: i64 = 150;

const TODO_FIELDS: &str =
    "id listId title notes dueDate dueAt priority completed completedAt position createdAt updatedAt";

impl TestApp {
    async fn create_todo_list(&self, name: &str) -> Value {
        self.data(
            "mutation($input: CreateTodoListInput!) { createTodoList(input: $input) { id name color position } }",
            json!({ "input": { "name": name } }),
        )
        .await["createTodoList"]
            .clone()
    }

    async fn create_todo_list_id(&self, name: &str) -> String {
        id(&self.create_todo_list(name).await)
    }

    async fn create_todo(&self, input: Value) -> Value {
        let query =
            format!("mutation($input: CreateTodoInput!) {{ createTodo(input: $input) {{ {TODO_FIELDS} }} }}");
        self.data(&query, json!({ "input": input })).await["createTodo"].clone()
    }

    async fn create_todo_id(&self, list_id: &str, title: &str) -> String {
        id(&self
            .create_todo(json!({ "listId": list_id, "title": title }))
            .await)
    }

    async fn update_todo(&self, id: &str, input: Value) -> Value {
        let query = format!(
            "mutation($id: ID!, $input: UpdateTodoInput!) {{ updateTodo(id: $id, input: $input) {{ {TODO_FIELDS} }} }}"
        );
        self.graphql(&query, json!({ "id": id, "input": input })).await
    }

    async fn reorder_todos(&self, list_id: &str, todo_ids: &[String]) -> Value {
        self.graphql(
            "mutation($list: ID!, $ids: [ID!]!) { reorderTodos(listId: $list, todoIds: $ids) { id position } }",
            json!({ "list": list_id, "ids": todo_ids }),
        )
        .await
    }

    async fn todo_lists(&self) -> Vec<Value> {
        self.data("{ todoLists { id name color position } }", json!({}))
            .await["todoLists"]
            .as_array()
            .expect("todoLists")
            .clone()
    }

    /// The `todos` connection page for these arguments (raw body, errors included).
    async fn todos_page(&self, args: Value) -> Value {
        self.graphql(
            "query($list: ID, $completed: Boolean, $dueBefore: DateTime, $first: Int, $after: String) {
               todos(listId: $list, completed: $completed, dueBefore: $dueBefore, first: $first, after: $after) {
                 edges { cursor node { id listId title position } }
                 pageInfo { hasNextPage endCursor hasPreviousPage startCursor }
               }
             }",
            args,
        )
        .await
    }

    /// A list's todos in order, as (id, title, position).
    async fn todo_list_contents(&self, list_id: &str) -> Vec<(String, String, i64)> {
        let body = self
            .todos_page(json!({ "list": list_id, "first": MAX_PAGE_WITHIN_COMPLEXITY }))
            .await;
        assert!(body.get("errors").is_none(), "unexpected errors: {body}");
        body["data"]["todos"]["edges"]
            .as_array()
            .expect("edges")
            .iter()
            .map(|edge| {
                let node = &edge["node"];
                (
                    id(node),
                    node["title"].as_str().expect("title").to_string(),
                    node["position"].as_i64().expect("position"),
                )
            })
            .collect()
    }

    async fn todo_titles_in(&self, list_id: &str) -> Vec<String> {
        let contents = self.todo_list_contents(list_id).await;
        assert_positions_are_dense(&contents);
        contents.into_iter().map(|(_, title, _)| title).collect()
    }
}

fn id(value: &Value) -> String {
    value["id"].as_str().expect("id").to_string()
}

fn error_field(body: &Value) -> Option<&str> {
    body["errors"][0]["extensions"]["field"].as_str()
}

fn assert_bad_input(body: &Value, field: &str) {
    assert_eq!(error_code(body), Some("BAD_USER_INPUT"), "{body}");
    assert_eq!(error_field(body), Some(field), "{body}");
}

fn assert_positions_are_dense(contents: &[(String, String, i64)]) {
    let positions: Vec<i64> = contents.iter().map(|(_, _, position)| *position).collect();
    let expected: Vec<i64> = (0..contents.len() as i64).collect();
    assert_eq!(positions, expected, "positions are 0..n-1 in order: {contents:?}");
}

async fn signed_in(email: &str) -> TestApp {
    let app = TestApp::spawn().await;
    app.sign_in(email).await;
    app
}

#[tokio::test]
async fn lists_are_created_at_the_end_renamed_moved_and_deleted() {
    let app = signed_in("lists@example.com").await;
    let work = app.create_todo_list("  Work  ").await;
    assert_eq!(work["name"], "Work", "names are trimmed");
    assert_eq!(work["position"], 0);
    assert_eq!(work["color"], Value::Null);
    let home = app.create_todo_list_id("Home").await;
    let errands = app.create_todo_list_id("Errands").await;

    let updated = app
        .data(
            "mutation($id: ID!) { updateTodoList(id: $id, input: { name: \"Chores\", color: \"#AABBCC\" }) { name color position } }",
            json!({ "id": home }),
        )
        .await;
    assert_eq!(
        updated["updateTodoList"],
        json!({ "name": "Chores", "color": "#aabbcc", "position": 1 })
    );

    // Moving the last list first renumbers the others.
    let moved = app
        .data(
            "mutation($id: ID!) { updateTodoList(id: $id, input: { position: 0 }) { position } }",
            json!({ "id": errands }),
        )
        .await;
    assert_eq!(moved["updateTodoList"]["position"], 0);
    let names = |lists: Vec<Value>| {
        lists
            .iter()
            .map(|list| {
                (
                    list["name"].as_str().unwrap_or_default().to_string(),
                    list["position"].clone(),
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(app.todo_lists().await),
        vec![
            ("Errands".to_string(), json!(0)),
            ("Work".to_string(), json!(1)),
            ("Chores".to_string(), json!(2)),
        ]
    );

    // A position past the end means last; a null colour removes it.
    app.data(
        "mutation($id: ID!) { updateTodoList(id: $id, input: { position: 99, color: null }) { id } }",
        json!({ "id": errands }),
    )
    .await;
    let lists = app.todo_lists().await;
    assert_eq!(lists[2]["name"], "Errands");
    assert_eq!(lists[2]["position"], 2);
    assert_eq!(
        lists[1]["color"], "#aabbcc",
        "other fields of other lists untouched"
    );

    // Deleting a list (and its todos) closes the gap.
    app.create_todo_id(&id(&work), "inside work").await;
    let deleted = app
        .data(
            "mutation($id: ID!) { deleteTodoList(id: $id) }",
            json!({ "id": id(&work) }),
        )
        .await;
    assert_eq!(deleted["deleteTodoList"], true);
    assert_eq!(
        names(app.todo_lists().await),
        vec![
            ("Chores".to_string(), json!(0)),
            ("Errands".to_string(), json!(1))
        ]
    );
    let all = app.todos_page(json!({})).await;
    assert_eq!(
        all["data"]["todos"]["edges"],
        json!([]),
        "the list's todos went with it"
    );
    let again = app
        .graphql(
            "mutation($id: ID!) { deleteTodoList(id: $id) }",
            json!({ "id": id(&work) }),
        )
        .await;
    assert_eq!(error_code(&again), Some("NOT_FOUND"));
}

#[tokio::test]
async fn todos_are_created_updated_and_deleted() {
    let app = signed_in("crud@example.com").await;
    let list = app.create_todo_list_id("Groceries").await;
    let todo = app
        .create_todo(json!({
            "listId": list, "title": " Milk ", "notes": "semi-skimmed", "dueDate": "2030-05-01", "priority": "HIGH"
        }))
        .await;
    assert_eq!(todo["title"], "Milk");
    assert_eq!(todo["listId"], list.as_str());
    assert_eq!(todo["notes"], "semi-skimmed");
    assert_eq!(todo["dueDate"], "2030-05-01");
    assert_eq!(todo["dueAt"], Value::Null);
    assert_eq!(todo["priority"], "HIGH");
    assert_eq!(todo["completed"], false);
    assert_eq!(todo["completedAt"], Value::Null);
    assert_eq!(todo["position"], 0);
    let todo_id = id(&todo);

    let plain = app.create_todo(json!({ "listId": list, "title": "Bread" })).await;
    assert_eq!(plain["priority"], "NONE", "priority defaults to NONE");
    assert_eq!(plain["notes"], Value::Null);

    let done = app
        .update_todo(
            &todo_id,
            json!({ "completed": true, "title": "Oat milk", "notes": null }),
        )
        .await;
    let done = &done["data"]["updateTodo"];
    assert_eq!(done["completed"], true);
    assert!(
        done["completedAt"].is_string(),
        "completing sets completedAt: {done}"
    );
    assert_eq!(done["title"], "Oat milk");
    assert_eq!(done["notes"], Value::Null, "null clears notes");
    assert_eq!(done["dueDate"], "2030-05-01", "omitted fields stay");
    assert_eq!(done["priority"], "HIGH");

    // A due instant replaces the due day.
    let timed = app
        .update_todo(&todo_id, json!({ "dueAt": "2030-05-01T09:30:00+02:00" }))
        .await;
    let timed = &timed["data"]["updateTodo"];
    assert_eq!(timed["dueDate"], Value::Null);
    let due_at =
        chrono::DateTime::parse_from_rfc3339(timed["dueAt"].as_str().expect("dueAt")).expect("RFC 3339");
    assert_eq!(
        due_at,
        chrono::DateTime::parse_from_rfc3339("2030-05-01T07:30:00Z").expect("instant")
    );
    assert_eq!(timed["completed"], true);

    let reopened = app.update_todo(&todo_id, json!({ "completed": false })).await;
    assert_eq!(reopened["data"]["updateTodo"]["completed"], false);
    assert_eq!(reopened["data"]["updateTodo"]["completedAt"], Value::Null);

    let deleted = app
        .data(
            "mutation($id: ID!) { deleteTodo(id: $id) }",
            json!({ "id": todo_id }),
        )
        .await;
    assert_eq!(deleted["deleteTodo"], true);
    assert_eq!(
        app.todo_titles_in(&list).await,
        vec!["Bread"],
        "the gap is closed"
    );
    let again = app
        .graphql(
            "mutation($id: ID!) { deleteTodo(id: $id) }",
            json!({ "id": todo_id }),
        )
        .await;
    assert_eq!(error_code(&again), Some("NOT_FOUND"));
    let malformed = app.update_todo("not-a-uuid", json!({ "title": "x" })).await;
    assert_eq!(error_code(&malformed), Some("NOT_FOUND"));
}

#[tokio::test]
async fn validation_errors_name_the_field() {
    let app = signed_in("validation@example.com").await;
    let create_list = |input: Value| {
        let app = &app;
        async move {
            app.graphql(
                "mutation($input: CreateTodoListInput!) { createTodoList(input: $input) { id } }",
                json!({ "input": input }),
            )
            .await
        }
    };
    assert_bad_input(&create_list(json!({ "name": "   " })).await, "name");
    assert_bad_input(&create_list(json!({ "name": "x".repeat(201) })).await, "name");
    assert_bad_input(
        &create_list(json!({ "name": "ok", "color": "red" })).await,
        "color",
    );
    assert_bad_input(
        &create_list(json!({ "name": "ok", "color": "#12345g" })).await,
        "color",
    );
    assert!(
        create_list(json!({ "name": "é".repeat(200) })).await["errors"].is_null(),
        "200 characters are fine"
    );

    let list = app.create_todo_list_id("Valid").await;
    let update_list = app
        .graphql(
            "mutation($id: ID!) { updateTodoList(id: $id, input: { position: -1 }) { id } }",
            json!({ "id": list }),
        )
        .await;
    assert_bad_input(&update_list, "position");
    let rename = app
        .graphql(
            "mutation($id: ID!) { updateTodoList(id: $id, input: { name: \"\" }) { id } }",
            json!({ "id": list }),
        )
        .await;
    assert_bad_input(&rename, "name");

    let create_todo = |input: Value| {
        let app = &app;
        async move {
            app.graphql(
                "mutation($input: CreateTodoInput!) { createTodo(input: $input) { id } }",
                json!({ "input": input }),
            )
            .await
        }
    };
    assert_bad_input(
        &create_todo(json!({ "listId": list, "title": " " })).await,
        "title",
    );
    assert_bad_input(
        &create_todo(json!({ "listId": list, "title": "x".repeat(501) })).await,
        "title",
    );
    assert_bad_input(
        &create_todo(json!({ "listId": list, "title": "t", "notes": "n".repeat(10_001) })).await,
        "notes",
    );
    assert_bad_input(
        &create_todo(json!({
            "listId": list, "title": "t", "dueDate": "2030-01-01", "dueAt": "2030-01-01T10:00:00Z"
        }))
        .await,
        "dueAt",
    );

    let todo = app.create_todo_id(&list, "fine").await;
    assert_bad_input(&app.update_todo(&todo, json!({ "title": "" })).await, "title");
    assert_bad_input(
        &app.update_todo(
            &todo,
            json!({ "dueDate": "2030-01-01", "dueAt": "2030-01-01T10:00:00Z" }),
        )
        .await,
        "dueAt",
    );
    let sized = |first: i64| {
        let app = &app;
        async move {
            app.graphql(
                "query($first: Int) { todos(first: $first) { edges { cursor } } }",
                json!({ "first": first }),
            )
            .await
        }
    };
    assert!(
        sized(200).await.get("errors").is_none(),
        "200 is the largest page"
    );
    assert_bad_input(&sized(201).await, "first");
    assert_bad_input(&sized(-1).await, "first");
    assert_bad_input(&app.todos_page(json!({ "after": "garbage" })).await, "after");
    assert_eq!(
        app.todo_titles_in(&list).await,
        vec!["fine"],
        "refused changes changed nothing"
    );
}

#[tokio::test]
async fn new_todos_go_to_the_end_and_moves_and_deletes_close_gaps() {
    let app = signed_in("moves@example.com").await;
    let a = app.create_todo_list_id("A").await;
    let b = app.create_todo_list_id("B").await;
    let mut a_ids = Vec::new();
    for title in ["a0", "a1", "a2", "a3"] {
        a_ids.push(app.create_todo_id(&a, title).await);
    }
    for title in ["b0", "b1"] {
        app.create_todo_id(&b, title).await;
    }
    assert_eq!(app.todo_titles_in(&a).await, vec!["a0", "a1", "a2", "a3"]);

    let moved = app.update_todo(&a_ids[1], json!({ "listId": b })).await;
    assert_eq!(moved["data"]["updateTodo"]["listId"], b.as_str());
    assert_eq!(
        moved["data"]["updateTodo"]["position"], 2,
        "moved to the end of B"
    );
    assert_eq!(app.todo_titles_in(&a).await, vec!["a0", "a2", "a3"]);
    assert_eq!(app.todo_titles_in(&b).await, vec!["b0", "b1", "a1"]);

    // Naming the todo's own list is not a move.
    let stay = app.update_todo(&a_ids[2], json!({ "listId": a })).await;
    assert_eq!(stay["data"]["updateTodo"]["position"], 1);

    app.data(
        "mutation($id: ID!) { deleteTodo(id: $id) }",
        json!({ "id": a_ids[0] }),
    )
    .await;
    assert_eq!(app.todo_titles_in(&a).await, vec!["a2", "a3"]);
    app.create_todo_id(&a, "a4").await;
    assert_eq!(app.todo_titles_in(&a).await, vec!["a2", "a3", "a4"]);
}

#[tokio::test]
async fn todos_filter_and_page_through_120_todos() {
    let app = TestApp::spawn_with(|settings| settings.rate_limits.api_per_min = 0).await;
    app.sign_in("pages@example.com").await;
    let first_list = app.create_todo_list_id("First").await;
    let second_list = app.create_todo_list_id("Second").await;
    let mut expected = Vec::new();
    // The second list is filled first: order follows the lists' order, not creation.
    for (list, count, prefix) in [(&second_list, 50, "s"), (&first_list, 70, "f")] {
        for n in 0..count {
            let due = if n % 10 == 0 {
                json!({ "dueAt": "2030-01-01T08:00:00Z" })
            } else if n % 10 == 1 {
                json!({ "dueDate": "2030-01-01" })
            } else {
                json!({ "dueDate": "2030-02-01" })
            };
            let mut input = json!({ "listId": list, "title": format!("{prefix}{n:03}") });
            input
                .as_object_mut()
                .expect("object")
                .extend(due.as_object().expect("object").clone());
            let todo = app.create_todo(input).await;
            expected.push((prefix, n, id(&todo)));
        }
    }
    expected.sort_by_key(|(prefix, n, _)| (*prefix != "f", *n));
    let expected_ids: Vec<String> = expected.iter().map(|(_, _, id)| id.clone()).collect();

    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = Vec::new();
    loop {
        let body = app.todos_page(json!({ "first": 50, "after": after })).await;
        assert!(body.get("errors").is_none(), "{body}");
        let connection = &body["data"]["todos"];
        let edges = connection["edges"].as_array().expect("edges");
        pages.push(edges.len());
        seen.extend(edges.iter().map(|edge| id(&edge["node"])));
        let info = &connection["pageInfo"];
        assert_eq!(info["hasPreviousPage"], after.is_some());
        assert_eq!(info["startCursor"], edges[0]["cursor"]);
        assert_eq!(info["endCursor"], edges[edges.len() - 1]["cursor"]);
        if info["hasNextPage"] == false {
            break;
        }
        after = Some(info["endCursor"].as_str().expect("endCursor").to_string());
        assert!(pages.len() < 5, "pagination must end");
    }
    assert_eq!(pages, vec![50, 50, 20]);
    assert_eq!(seen, expected_ids, "every todo once, by list then position");

    // Default page size is 50.
    let default_page = app.todos_page(json!({})).await;
    assert_eq!(
        default_page["data"]["todos"]["edges"].as_array().map(Vec::len),
        Some(50)
    );

    let second_only = app
        .todos_page(json!({ "list": second_list, "first": MAX_PAGE_WITHIN_COMPLEXITY }))
        .await;
    let second_edges = second_only["data"]["todos"]["edges"].as_array().expect("edges");
    assert_eq!(second_edges.len(), 50);
    assert!(
        second_edges
            .iter()
            .all(|edge| edge["node"]["listId"] == second_list.as_str())
    );
    assert_eq!(second_only["data"]["todos"]["pageInfo"]["hasNextPage"], false);

    // Complete three todos of the first list.
    for (_, _, todo) in expected.iter().filter(|(prefix, _, _)| *prefix == "f").take(3) {
        app.update_todo(todo, json!({ "completed": true })).await;
    }
    let completed = app.todos_page(json!({ "completed": true })).await;
    let completed_titles: Vec<&str> = completed["data"]["todos"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|edge| edge["node"]["title"].as_str().expect("title"))
        .collect();
    assert_eq!(completed_titles, vec!["f000", "f001", "f002"]);
    let open = app
        .todos_page(json!({ "completed": false, "first": MAX_PAGE_WITHIN_COMPLEXITY }))
        .await;
    assert_eq!(open["data"]["todos"]["edges"].as_array().map(Vec::len), Some(117));

    // Due before 2030-01-01T12:00Z: dueAt 08:00 that day counts, dueDate 2030-01-01 does not (not before
    // that day), 2030-02-01 does not.
    let due_noon = app
        .todos_page(json!({ "dueBefore": "2030-01-01T12:00:00Z", "first": MAX_PAGE_WITHIN_COMPLEXITY }))
        .await;
    let due_titles: Vec<&str> = due_noon["data"]["todos"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|edge| edge["node"]["title"].as_str().expect("title"))
        .collect();
    assert_eq!(due_titles.len(), 12, "{due_titles:?}");
    assert!(due_titles.iter().all(|title| title.ends_with('0')));
    let due_next_day = app
        .todos_page(json!({ "dueBefore": "2030-01-02T00:00:00Z", "first": MAX_PAGE_WITHIN_COMPLEXITY, "list": first_list }))
        .await;
    assert_eq!(
        due_next_day["data"]["todos"]["edges"].as_array().map(Vec::len),
        Some(14),
        "7 timed and 7 all-day todos of the first list"
    );
}

#[tokio::test]
async fn a_page_too_costly_for_the_complexity_limit_is_refused() {
    let app = signed_in("complexity@example.com").await;
    // A page of 200 full todos costs about 3,000: a dozen of them are over the limit of 30,000.
    let pages: String = (0..12)
        .map(|i| format!("p{i}: todos(first: 200) {{ edges {{ cursor node {{ {TODO_FIELDS} }} }} }} "))
        .collect();
    let body = app.graphql(&format!("{{ {pages} }}"), json!({})).await;
    assert_eq!(error_code(&body), Some("BAD_USER_INPUT"), "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("complex"),
        "twelve pages of 200 full todos exceed the limit: {body}"
    );
    assert!(body["data"].is_null(), "{body}");
    let small = format!("{{ todos(first: 50) {{ edges {{ cursor node {{ {TODO_FIELDS} }} }} }} }}");
    assert!(app.graphql(&small, json!({})).await.get("errors").is_none());
}

#[tokio::test]
async fn todo_lists_show_their_todos_filtered_by_completion() {
    let app = signed_in("nested@example.com").await;
    let first = app.create_todo_list_id("First").await;
    let second = app.create_todo_list_id("Second").await;
    let done = app.create_todo_id(&first, "done").await;
    app.create_todo_id(&first, "open").await;
    app.create_todo_id(&second, "other").await;
    app.update_todo(&done, json!({ "completed": true })).await;

    let data = app
        .data(
            "{ todoLists { name
                 all: todos { title position }
                 open: todos(completed: false) { title }
                 closed: todos(completed: true) { title } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        data["todoLists"],
        json!([
            {
                "name": "First",
                "all": [{ "title": "done", "position": 0 }, { "title": "open", "position": 1 }],
                "open": [{ "title": "open" }],
                "closed": [{ "title": "done" }],
            },
            {
                "name": "Second",
                "all": [{ "title": "other", "position": 0 }],
                "open": [{ "title": "other" }],
                "closed": [],
            },
        ])
    );
}

#[tokio::test]
async fn reorder_puts_the_todos_in_the_given_order() {
    let app = signed_in("reorder@example.com").await;
    let list = app.create_todo_list_id("Reorder").await;
    let mut ids = Vec::new();
    for title in ["one", "two", "three", "four"] {
        ids.push(app.create_todo_id(&list, title).await);
    }
    let order = vec![ids[2].clone(), ids[0].clone(), ids[3].clone(), ids[1].clone()];
    let body = app.reorder_todos(&list, &order).await;
    assert!(body.get("errors").is_none(), "{body}");
    let returned: Vec<(String, i64)> = body["data"]["reorderTodos"]
        .as_array()
        .expect("todos")
        .iter()
        .map(|todo| (id(todo), todo["position"].as_i64().expect("position")))
        .collect();
    assert_eq!(
        returned,
        order.iter().cloned().zip(0..).collect::<Vec<_>>(),
        "returned in the new order"
    );
    assert_eq!(
        app.todo_titles_in(&list).await,
        vec!["three", "one", "four", "two"]
    );
}

#[tokio::test]
async fn reorder_refuses_anything_but_the_lists_todos_once_each() {
    let app = signed_in("refusals@example.com").await;
    let list = app.create_todo_list_id("Mine").await;
    let other_list = app.create_todo_list_id("Other").await;
    let mut ids = Vec::new();
    for title in ["one", "two", "three"] {
        ids.push(app.create_todo_id(&list, title).await);
    }
    let elsewhere = app.create_todo_id(&other_list, "elsewhere").await;
    let stranger = app.new_browser();
    stranger.sign_in("stranger@example.com").await;
    let stranger_list = stranger.create_todo_list_id("Theirs").await;
    let strangers_todo = stranger.create_todo_id(&stranger_list, "theirs").await;

    let refusals = [
        ("missing", vec![ids[2].clone(), ids[0].clone()]),
        ("duplicated", vec![ids[2].clone(), ids[0].clone(), ids[0].clone()]),
        (
            "duplicated in place of another",
            vec![ids[2].clone(), ids[0].clone(), ids[0].clone(), ids[1].clone()],
        ),
        (
            "another list's",
            vec![ids[2].clone(), ids[0].clone(), ids[1].clone(), elsewhere.clone()],
        ),
        (
            "replaced by another list's",
            vec![ids[2].clone(), ids[0].clone(), elsewhere],
        ),
        (
            "another user's",
            vec![ids[2].clone(), ids[0].clone(), strangers_todo],
        ),
        (
            "malformed",
            vec![ids[2].clone(), ids[0].clone(), "not-an-id".to_string()],
        ),
        ("empty", vec![]),
    ];
    for (case, order) in refusals {
        let body = app.reorder_todos(&list, &order).await;
        assert_eq!(error_code(&body), Some("BAD_USER_INPUT"), "{case}: {body}");
        assert_eq!(error_field(&body), Some("todoIds"), "{case}: {body}");
        assert_eq!(
            app.todo_titles_in(&list).await,
            vec!["one", "two", "three"],
            "{case}: nothing changed"
        );
    }
    assert_eq!(stranger.todo_titles_in(&stranger_list).await, vec!["theirs"]);
}

#[tokio::test]
async fn concurrent_reorders_leave_exactly_one_of_the_submitted_orders() {
    let app = signed_in("concurrent@example.com").await;
    let list = app.create_todo_list_id("Busy").await;
    let mut ids = Vec::new();
    for n in 0..8 {
        ids.push(app.create_todo_id(&list, &format!("t{n}")).await);
    }
    // Ten distinct permutations: rotations, some reversed.
    let permutations: Vec<Vec<String>> = (0..10)
        .map(|k| {
            let mut order = ids.clone();
            order.rotate_left(k % ids.len());
            if k >= ids.len() / 2 {
                order.reverse();
            }
            order
        })
        .collect();
    assert_eq!(
        permutations.iter().collect::<HashSet<_>>().len(),
        permutations.len(),
        "distinct permutations"
    );
    let browsers: Vec<TestApp> = (0..3).map(|_| app.new_browser()).collect();
    for browser in &browsers {
        browser.sign_in("concurrent@example.com").await;
    }
    let results = join_all(permutations.iter().enumerate().map(|(n, order)| {
        let client = if n % 4 == 3 { &app } else { &browsers[n % 3] };
        client.reorder_todos(&list, order)
    }))
    .await;
    for body in &results {
        assert!(body.get("errors").is_none(), "every reorder succeeds: {body}");
    }

    let contents = app.todo_list_contents(&list).await;
    assert_positions_are_dense(&contents);
    let final_order: Vec<String> = contents.into_iter().map(|(id, _, _)| id).collect();
    assert!(
        permutations.contains(&final_order),
        "the final order is one of the submitted ones: {final_order:?}"
    );
}

#[tokio::test]
async fn concurrent_creates_get_distinct_positions() {
    let app = signed_in("creates@example.com").await;
    let list = app.create_todo_list_id("Inbox").await;
    let created = join_all((0..12).map(|n| {
        let app = &app;
        let list = &list;
        async move {
            app.graphql(
                "mutation($input: CreateTodoInput!) { createTodo(input: $input) { id } }",
                json!({ "input": { "listId": list, "title": format!("c{n}") } }),
            )
            .await
        }
    }))
    .await;
    for body in &created {
        assert!(body.get("errors").is_none(), "{body}");
    }
    let contents = app.todo_list_contents(&list).await;
    assert_eq!(contents.len(), 12);
    assert_positions_are_dense(&contents);

    let lists = join_all((0..6).map(|n| {
        let app = &app;
        async move { app.create_todo_list(&format!("L{n}")).await }
    }))
    .await;
    let mut positions: Vec<i64> = lists
        .iter()
        .map(|list| list["position"].as_i64().expect("position"))
        .collect();
    positions.sort_unstable();
    assert_eq!(positions, vec![1, 2, 3, 4, 5, 6]);
}

#[tokio::test]
async fn concurrent_moves_deletes_and_creates_keep_both_lists_dense() {
    let app = signed_in("shuffle@example.com").await;
    let a = app.create_todo_list_id("A").await;
    let b = app.create_todo_list_id("B").await;
    let mut a_ids = Vec::new();
    let mut b_ids = Vec::new();
    for n in 0..6 {
        a_ids.push(app.create_todo_id(&a, &format!("a{n}")).await);
        b_ids.push(app.create_todo_id(&b, &format!("b{n}")).await);
    }
    let moves = [
        (&a_ids[0], &b),
        (&a_ids[2], &b),
        (&a_ids[4], &b),
        (&b_ids[1], &a),
        (&b_ids[3], &a),
    ]
    .map(|(todo, target)| {
        let app = &app;
        async move { app.update_todo(todo, json!({ "listId": target })).await }
    });
    let deletes = [&a_ids[5], &b_ids[5]].map(|todo| {
        let app = &app;
        async move {
            app.graphql(
                "mutation($id: ID!) { deleteTodo(id: $id) }",
                json!({ "id": todo }),
            )
            .await
        }
    });
    let creates = [(&a, "new a"), (&b, "new b")].map(|(list, title)| {
        let app = &app;
        async move {
            app.graphql(
                "mutation($input: CreateTodoInput!) { createTodo(input: $input) { id } }",
                json!({ "input": { "listId": list, "title": title } }),
            )
            .await
        }
    });
    let (moved, deleted, created) = tokio::join!(join_all(moves), join_all(deletes), join_all(creates));
    for body in moved.iter().chain(&deleted).chain(&created) {
        assert!(body.get("errors").is_none(), "{body}");
    }

    let mut a_titles = app.todo_titles_in(&a).await;
    let mut b_titles = app.todo_titles_in(&b).await;
    a_titles.sort();
    b_titles.sort();
    assert_eq!(a_titles, vec!["a1", "a3", "b1", "b3", "new a"]);
    assert_eq!(b_titles, vec!["a0", "a2", "a4", "b0", "b2", "b4", "new b"]);
}

#[tokio::test]
async fn another_users_lists_and_todos_are_not_found() {
    let alice = signed_in("alice@example.com").await;
    let list = alice.create_todo_list_id("Alice's").await;
    let todo = alice.create_todo_id(&list, "private").await;
    let bob = alice.new_browser();
    bob.sign_in("bob@example.com").await;
    let bobs_list = bob.create_todo_list_id("Bob's").await;
    let bobs_todo = bob.create_todo_id(&bobs_list, "bob's").await;

    let attempts = [
        (
            "updateTodo",
            bob.update_todo(&todo, json!({ "title": "hijacked" })).await,
        ),
        (
            "deleteTodo",
            bob.graphql(
                "mutation($id: ID!) { deleteTodo(id: $id) }",
                json!({ "id": todo }),
            )
            .await,
        ),
        (
            "updateTodoList",
            bob.graphql(
                "mutation($id: ID!) { updateTodoList(id: $id, input: { name: \"hijacked\" }) { id } }",
                json!({ "id": list }),
            )
            .await,
        ),
        (
            "deleteTodoList",
            bob.graphql(
                "mutation($id: ID!) { deleteTodoList(id: $id) }",
                json!({ "id": list }),
            )
            .await,
        ),
        (
            "reorderTodos",
            bob.reorder_todos(&list, std::slice::from_ref(&todo)).await,
        ),
        ("todos(listId)", bob.todos_page(json!({ "list": list })).await),
        (
            "createTodo in Alice's list",
            bob.graphql(
                "mutation($input: CreateTodoInput!) { createTodo(input: $input) { id } }",
                json!({ "input": { "listId": list, "title": "intruder" } }),
            )
            .await,
        ),
        (
            "moving Bob's todo into Alice's list",
            bob.update_todo(&bobs_todo, json!({ "listId": list })).await,
        ),
    ];
    for (what, body) in attempts {
        assert_eq!(error_code(&body), Some("NOT_FOUND"), "{what}: {body}");
    }

    let bobs_lists = bob.todo_lists().await;
    assert_eq!(bobs_lists.len(), 1);
    assert_eq!(bobs_lists[0]["name"], "Bob's");
    let bobs_todos = bob
        .todos_page(json!({ "first": MAX_PAGE_WITHIN_COMPLEXITY }))
        .await;
    assert_eq!(
        bobs_todos["data"]["todos"]["edges"]
            .as_array()
            .map(|edges| edges.iter().map(|edge| id(&edge["node"])).collect::<Vec<_>>()),
        Some(vec![bobs_todo])
    );
    assert_eq!(
        alice.todo_titles_in(&list).await,
        vec!["private"],
        "Alice's data untouched"
    );
    assert_eq!(alice.todo_lists().await[0]["name"], "Alice's");
    assert_eq!(bob.todo_titles_in(&bobs_list).await, vec!["bob's"]);
}

#[tokio::test]
async fn signed_out_callers_are_unauthenticated() {
    let app = TestApp::spawn().await;
    let body = app.graphql("{ todoLists { id } }", json!({})).await;
    assert_eq!(error_code(&body), Some("UNAUTHENTICATED"));
    let body = app
        .graphql(
            "mutation { createTodoList(input: { name: \"x\" }) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&body), Some("UNAUTHENTICATED"));
}

#[tokio::test]
async fn names_titles_and_notes_are_encrypted_at_rest() {
    let app = signed_in("secrets@example.com").await;
    let list = app.create_todo_list_id("Secret Groceries").await;
    app.create_todo(json!({ "listId": list, "title": "Buy unicorn milk", "notes": "hidden notes 123" }))
        .await;
    assert_eq!(
        app.todo_titles_in(&list).await,
        vec!["Buy unicorn milk"],
        "readable through the API"
    );

    let db = Database::connect(&app.server.db.url).await.expect("connect");
    let plaintexts = ["Secret Groceries", "Buy unicorn milk", "hidden notes 123"];
    for (table, encrypted_columns) in [("todo_lists", &["name"][..]), ("todos", &["title", "notes"][..])] {
        let statement = Statement::from_string(db.get_database_backend(), format!("SELECT * FROM {table}"));
        let rows = JsonValue::find_by_statement(statement)
            .all(&db)
            .await
            .expect("rows");
        assert_eq!(rows.len(), 1, "{table}");
        let row = rows[0].as_object().expect("row");
        for column in encrypted_columns {
            assert!(
                row.get(*column).is_some_and(|value| !value.is_null()),
                "{table}.{column} read: {row:?}"
            );
        }
        for (column, value) in row {
            let bytes = column_bytes(value);
            for plaintext in plaintexts {
                assert!(
                    !bytes
                        .windows(plaintext.len())
                        .any(|window| window == plaintext.as_bytes()),
                    "{table}.{column} holds {plaintext:?} in clear"
                );
            }
        }
    }
    db.close().await.ok();
}

/// A column's content as bytes: text as UTF-8, a byte array as itself.
fn column_bytes(value: &Value) -> Vec<u8> {
    match value {
        Value::String(text) => text.as_bytes().to_vec(),
        Value::Array(items) => items
            .iter()
            .filter_map(|item| item.as_u64().and_then(|byte| u8::try_from(byte).ok()))
            .collect(),
        other => other.to_string().into_bytes(),
    }
}
