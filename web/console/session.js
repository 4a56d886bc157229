// The operator's API token, kept in this browser's local storage until "Forget token".
// It is sent only in Authorization headers and the WebSocket's connection_init, never in a URL.

const TOKEN_KEY = "signalsmith.token"; // also read by the GraphQL IDE (web/ide/ide.js)

export function savedToken() {
  try {
    return window.localStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

export function saveToken(token) {
  try {
    window.localStorage.setItem(TOKEN_KEY, token);
  } catch {
    // Storage is disabled: the token lives as long as the page.
  }
}

export function forgetToken() {
  try {
    window.localStorage.removeItem(TOKEN_KEY);
  } catch {
    // Nothing was stored.
  }
}
