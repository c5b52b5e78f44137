"""The structured shapes of an index: what Gemini returns for one page, and what a whole
document becomes in `file_content_json`.

Field names and nesting are the registre extractor's (its sanitizer's output, which its
readers consume): a page is `{pageNumber, metadata: {circonscription, cadastre,
lot_number}, inscriptions: [{acte_publication_date, acte_publication_number,
acte_nature, parties: [{name, role}], remarques, radiation_number}]}`; an absent value
is null, a party without a qualité has role "".

Property order matters: Gemini writes properties in schema order, and the order of an
inscription's fields is the order of the columns on a modern index page.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class Party(BaseModel):
    name: str = Field(description="Nom de la partie, exactement tel qu'écrit")
    role: str = Field(
        description=(
            "Qualité de la partie telle qu'écrite (Vendeur, Acheteur, Créancier, Débiteur, "
            "Cédant, Cessionnaire, Requérant, 1re partie, …) ; chaîne vide si la page n'en "
            "donne pas"
        )
    )


class Inscription(BaseModel):
    """One line (inscription) of an index des immeubles."""

    acte_publication_date: str | None = Field(
        description="Date de présentation, AAAA-MM-JJ si elle est complète et lisible"
    )
    acte_publication_number: str | None = Field(
        description="Numéro d'inscription (de publication, d'enregistrement), chiffre pour chiffre"
    )
    acte_nature: str | None = Field(description="Nature de l'acte")
    parties: list[Party] = Field(description="Les parties de l'inscription, dans l'ordre")
    remarques: str | None = Field(description="Remarques, avis d'adresse, autres mentions")
    radiation_number: str | None = Field(
        description="Numéro inscrit dans la colonne des radiations, tel qu'écrit"
    )


class PageMetadata(BaseModel):
    circonscription: str | None = Field(description="Circonscription foncière de l'en-tête")
    cadastre: str | None = Field(description="Cadastre de l'en-tête")
    lot_number: str | None = Field(description="Numéro de lot de l'en-tête")


class IndexPage(BaseModel):
    """What Gemini returns for one index page (or for a range of its lines)."""

    metadata: PageMetadata
    inscriptions: list[Inscription]
    page_illisible: bool = Field(description="Vrai si la page est illisible ou sans inscription")


class IndexPageResult(BaseModel):
    """One page of `file_content_json.pages` (the registre extractor's page shape)."""

    pageNumber: int
    """1-based."""
    metadata: PageMetadata
    inscriptions: list[Inscription]


class BoostNote(BaseModel):
    """One change the index boost made to a value (kept in `file_content_json.boost`)."""

    page: int
    ligne: int
    """1-based, within the page."""
    field: str
    before: str | None
    after: str | None
    rule: str
    """The rule family, e.g. "nature", "utility", "bank", "radiation"."""
    reason: str
    """Why, in French, for a person reading the row."""


class ModelUsage(BaseModel):
    """One model's share of a document's bill."""

    gemini_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    thinking_tokens: int = 0
    cost_usd: float | None = None
    """None: the price table does not know the model."""


class Usage(BaseModel):
    """What a document cost in Gemini calls, tokens and money."""

    gemini_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    thinking_tokens: int = 0
    """Billed as output; counted apart."""
    cut_answers: int = 0
    """Answers Gemini cut at max_output_tokens (each continued, split or retried)."""
    cost_usd: float | None = None
    """At the price table's rates; None when a model used has no price."""
    by_model: dict[str, ModelUsage] = Field(default_factory=dict)


class IndexDocument(BaseModel):
    """`file_content_json` of a completed index row."""

    type: str = "index"
    pages: list[IndexPageResult]
    """After the boost (the text in `boosted_file_content`, structured)."""
    page_count: int
    illegible_pages: list[int] = Field(default_factory=list)
    boost: list[BoostNote] = Field(default_factory=list)
    pipeline: str = ""
    model: str = ""
    usage: Usage = Field(default_factory=Usage)

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class ActeDocument(BaseModel):
    """`file_content_json` of a completed acte row (the text itself is in the columns)."""

    type: str = "acte"
    page_count: int
    pages: list[int]
    """The page numbers present in both texts (every page of the PDF)."""
    inconsistencies: list[str] = Field(default_factory=list)
    """What the boost flagged as `[INCOHÉRENCE : …]`, in order."""
    pipeline: str = ""
    models: dict[str, str] = Field(default_factory=dict)
    usage: Usage = Field(default_factory=Usage)

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")
