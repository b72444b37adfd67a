// The GraphQL API over fetch: POST /graphql with the CSRF header (transport.js, shared with the
// playground). Resolves to `data`; rejects with an ApiError carrying the contract's `extensions.code`.

import { post } from "./transport.js";

export class ApiError extends Error {
  constructor(message, code, field) {
    super(message);
    this.code = code;
    this.field = field;
  }
}

/// Codes for answers that are not GraphQL (a proxy's page, a refused CSRF token, a rate limit).
const HTTP_CODES = { 401: "UNAUTHENTICATED", 403: "FORBIDDEN", 404: "NOT_FOUND", 429: "RATE_LIMITED" };

export async function gql(query, variables = {}) {
  let answer;
  try {
    answer = await post({ query, variables });
  } catch {
    throw new ApiError("Chronos could not be reached.", "NETWORK");
  }
  const { status, body } = answer;
  const errors = typeof body === "object" && body !== null ? body.errors : null;
  if (errors?.length) {
    const [first] = errors;
    const code = first.extensions?.code ?? HTTP_CODES[status] ?? "INTERNAL";
    throw new ApiError(first.message, code, first.extensions?.field);
  }
  if (status !== 200 || typeof body !== "object" || body === null) {
    const message = typeof body === "string" && body.length < 300 ? body : `HTTP ${status}`;
    throw new ApiError(message, HTTP_CODES[status] ?? "INTERNAL");
  }
  return body.data;
}

/// Every node of a Relay connection, following `after` until the last page.
export async function allNodes(query, variables, pick) {
  const nodes = [];
  let after = null;
  for (;;) {
    const connection = pick(await gql(query, { ...variables, after }));
    nodes.push(...connection.edges.map((edge) => edge.node));
    if (!connection.pageInfo.hasNextPage) return nodes;
    after = connection.pageInfo.endCursor;
  }
}
