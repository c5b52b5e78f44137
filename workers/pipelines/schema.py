"""What Gemini must return for one index page, and what a whole document becomes."""

from __future__ import annotations

from pydantic import BaseModel, Field


class IndexLine(BaseModel):
    """One inscription of an index des immeubles (field order is the page's column order)."""

    date: str | None = Field(description="Date de présentation (AAAA-MM-JJ si complète)")
    parties: str = Field(description="Parties, telles qu'écrites, séparées par « ; »")
    nature: str = Field(description="Nature de l'acte")
    numero_publication: str | None = Field(description="Numéro de publication")
    radiation: str | None = Field(description="Mention de radiation, le cas échéant")
    remarques: str | None = Field(description="Autres mentions de la ligne")


class IndexPage(BaseModel):
    lignes: list[IndexLine]
    page_illisible: bool = Field(description="Vrai si la page est illisible ou sans ligne")


class IndexPageResult(BaseModel):
    page: int
    """1-based"""
    lignes: list[IndexLine]
    page_illisible: bool


class IndexDocument(BaseModel):
    """`file_content` of a completed index row (JSON)."""

    pipeline: str
    model: str
    page_count: int
    pages: list[IndexPageResult]
