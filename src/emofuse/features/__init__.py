"""Pure feature functions: audio (and, later, face and text)."""
