"""Authentication: password hashing (`passwords`), sessions and tokens, login throttling."""
