"""Persistent state on SQLite through peewee: schema, migrations and the services over it.

Nothing here holds a module-level database: `open_database()` returns a fresh
`SqliteDatabase` per call and every query is executed against the database it is given.
"""
