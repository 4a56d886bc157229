// This server's APIs over HTTP: GraphQL at /graphql and REST under /api/v1, both JSON.

export class ApiError extends Error {
  /** `code` is GraphQL's `extensions.code` (UNAUTHENTICATED, CONFLICT …) or NETWORK. */
  constructor(code, message, details = []) {
    super(message);
    this.code = code;
    this.details = details;
  }
}

async function send(path, token, init = {}) {
  const headers = { Accept: "application/json", Authorization: `Bearer ${token}`, ...init.headers };
  let response;
  try {
    response = await fetch(path, { ...init, headers, cache: "no-store" });
  } catch {
    throw new ApiError("NETWORK", "The server could not be reached. Is it running?");
  }
  try {
    return { response, body: await response.json() };
  } catch {
    throw new ApiError(`HTTP_${response.status}`, `The server answered ${response.status}.`);
  }
}

/** The `data` of a GraphQL operation; its first error, if any, is thrown as an ApiError. */
export async function graphql(token, query, variables = {}) {
  const { body } = await send("/graphql", token, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ query, variables }),
  });
  const error = body.errors?.[0];
  if (error) {
    const extensions = error.extensions ?? {};
    throw new ApiError(extensions.code ?? "GRAPHQL_ERROR", error.message, extensions.details ?? []);
  }
  return body.data;
}

/** GET a REST resource under /api/v1; the error envelope is thrown as an ApiError. */
export async function restGet(token, path, params = {}) {
  const given = Object.entries(params).filter(([, value]) => value !== "" && value != null);
  const query = new URLSearchParams(given);
  const suffix = query.toString() ? `?${query}` : "";
  const { response, body } = await send(`/api/v1${path}${suffix}`, token);
  if (!response.ok) {
    const error = body.error ?? {};
    throw new ApiError(error.code ?? `HTTP_${response.status}`, error.message ?? "Request failed.");
  }
  return body;
}
