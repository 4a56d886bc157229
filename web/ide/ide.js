// Starts GraphiQL on the page served at /graphql. React, ReactDOM and GraphiQL are this
// server's own copies (/assets/vendor/, installed by `make setup`); nothing comes from
// another host. Requests carry the token the console at / keeps in this browser, unless
// the Headers tab sets another Authorization; subscriptions go over graphql-transport-ws.
(function () {
  "use strict";

  const TOKEN_KEY = "signalsmith.token"; // the console's key (web/console/session.js)
  const mount = document.getElementById("graphiql");
  const endpoint = new URL(mount.dataset.endpoint || "/graphql", window.location.href);
  const subscriptionUrl = new URL(endpoint);
  subscriptionUrl.protocol = endpoint.protocol === "https:" ? "wss:" : "ws:";

  let saved = null;
  try {
    saved = window.localStorage.getItem(TOKEN_KEY);
  } catch (_) {
    saved = null; // storage disabled: the Headers tab still works
  }
  const auth = saved ? { Authorization: "Bearer " + saved } : {};

  const fetcher = GraphiQL.createFetcher({
    url: endpoint.toString(),
    subscriptionUrl: subscriptionUrl.toString(),
    headers: auth,
    wsConnectionParams: auth,
  });

  const howToSignIn = saved
    ? ["# Requests carry the token the console at / keeps."]
    : [
        "# Sign in on the console at / first, or set under Headers:",
        '#   {"Authorization": "Bearer ssk_…"}',
      ];
  const defaultQuery = [
    "# Signalsmith GraphQL IDE",
    ...howToSignIn,
    "# Subscriptions stream over WebSocket.",
    "",
    "query Viewer {",
    "  viewer {",
    "    role",
    "    workspace { id name }",
    "    account { email }",
    "  }",
    "}",
    "",
  ].join("\n");

  ReactDOM.createRoot(mount).render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultQuery: defaultQuery,
      defaultEditorToolsVisibility: true,
      isHeadersEditorEnabled: true,
      // Headers typed here may hold a token: keep them out of storage.
      shouldPersistHeaders: false,
      inputValueDeprecation: true,
    }),
  );
})();
