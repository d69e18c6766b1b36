"""The REST API (v1), the Hugging Face–compatible read paths, and their wiring (`app.create_app`)."""
