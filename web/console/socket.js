// A small client of the graphql-transport-ws protocol, for GraphQL subscriptions:
// connection_init carries the token, then subscribe → next … → complete (or error), and
// every server ping is answered with a pong. After a drop it reconnects with back-off and
// subscribes again; `onState(state, detail)` reports "connecting", "live", "reconnecting"
// and "refused" (the server closed with 4403: the token is no longer accepted).

const PROTOCOL = "graphql-transport-ws";
const REFUSED = new Set([4401, 4403]);

export class SubscriptionSocket {
  constructor({ url, token, onState = () => {} }) {
    this.url = url;
    this.token = token;
    this.onState = onState;
    this.subscriptions = new Map(); // id -> { request, sink }
    this.nextId = 1;
    this.attempt = 0;
    this.acknowledged = false;
    this.stopped = false;
  }

  start() {
    this.stopped = false;
    this.open();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    this.socket?.close(1000, "signed out");
  }

  /**
   * Subscribe with `request()` → {query, variables} (asked again on every reconnect, so a
   * cursor can move on); the sink gets next(payload), error(errors) and complete().
   * Returns a function that ends the subscription.
   */
  subscribe(request, sink) {
    const id = String(this.nextId++);
    const subscription = { request, sink };
    this.subscriptions.set(id, subscription);
    if (this.acknowledged) this.sendSubscribe(id, subscription);
    return () => {
      if (this.subscriptions.delete(id) && this.acknowledged) this.send({ id, type: "complete" });
    };
  }

  open() {
    this.acknowledged = false;
    this.onState(this.attempt ? "reconnecting" : "connecting");
    const socket = new WebSocket(this.url, PROTOCOL);
    this.socket = socket;
    socket.addEventListener("open", () =>
      this.send({ type: "connection_init", payload: { Authorization: `Bearer ${this.token}` } }),
    );
    socket.addEventListener("message", (event) => this.receive(event.data));
    socket.addEventListener("close", (event) => this.closed(socket, event));
  }

  receive(raw) {
    let message;
    try {
      message = JSON.parse(raw);
    } catch {
      return;
    }
    const subscription = this.subscriptions.get(message.id);
    switch (message.type) {
      case "connection_ack":
        this.acknowledged = true;
        this.attempt = 0;
        for (const [id, entry] of this.subscriptions) this.sendSubscribe(id, entry);
        this.onState("live");
        break;
      case "ping":
        this.send({ type: "pong" });
        break;
      case "next":
        subscription?.sink.next(message.payload);
        break;
      case "error":
        this.subscriptions.delete(message.id);
        subscription?.sink.error(message.payload);
        break;
      case "complete":
        this.subscriptions.delete(message.id);
        subscription?.sink.complete();
        break;
      default:
        break; // pong, or a message type this client does not use
    }
  }

  closed(socket, event) {
    if (socket !== this.socket) return;
    this.acknowledged = false;
    if (this.stopped) return;
    if (REFUSED.has(event.code)) {
      this.stopped = true;
      this.onState("refused", event.reason);
      return;
    }
    const delay = Math.min(30_000, 1000 * 2 ** this.attempt);
    this.attempt += 1;
    this.onState("reconnecting");
    this.timer = setTimeout(() => this.open(), delay);
  }

  sendSubscribe(id, { request }) {
    this.send({ id, type: "subscribe", payload: request() });
  }

  send(message) {
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(message));
  }
}
