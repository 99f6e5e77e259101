"""Storage: engine and sessions (`engine`), the typed ORM (`models`), migrations (`migrate`)."""
