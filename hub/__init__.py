"""The registry: settings, database models, blob stores, upload validation, REST API, auth, dashboard and CLI.

Nothing under hub/ imports torch or transformers at module import time, so the API process stays light and
starts fast. (The one exception is `adaptarium bases add`, which imports lora lazily to read module shapes.)
"""
