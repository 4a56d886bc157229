"""The one business API: every use case is an async function here (DESIGN §1)."""
