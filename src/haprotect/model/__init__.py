"""The typed core: frozen dataclasses that every layer shares. No I/O here."""
