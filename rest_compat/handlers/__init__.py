"""REST handlers: each parses the call, invokes one service function and renders the result."""
