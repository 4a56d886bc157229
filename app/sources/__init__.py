"""The audience engine's source side: connections to SQL sources, model introspection, the
filter language compiled to SQL, split groups and the membership stream (DESIGN §5.3, §6).

Nothing here holds a metadata-database session: services load sources, models and audiences
and hand them in (see `FilterResolver`).
"""
