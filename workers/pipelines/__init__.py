"""The two OCR pipelines (index: per page, structured; acte: extract then boost)."""
