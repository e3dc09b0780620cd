"""The web service: FastAPI app factory, routers, schemas and the live page (see app.py)."""
