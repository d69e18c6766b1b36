"""Base models: registered by an admin with the map of adaptable modules to (in, out) shapes.

The shapes are computed once, by whoever registers the base (the CLI loads the model with transformers), so the API can
check every upload against them without ever loading weights itself.
"""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from hub import registry
from hub.api import views
from hub.api.deps import db, require, token
from hub.api.openapi import NAME_MAX, NAME_PATTERN, errors
from hub.models import ApiToken
from hub.registry import NotFound

router = APIRouter(prefix="/api/v1/bases", tags=["bases"], responses=errors(503))


Dim = Annotated[int, Field(gt=0)]


class BaseIn(BaseModel):
    name: str = Field(pattern=NAME_PATTERN, max_length=NAME_MAX)
    architecture: str
    module_shapes: dict[str, tuple[Dim, Dim]] = Field(min_length=1)  # module -> (in, out) features
    aliases: list[str] = []
    source: str = ""


@router.post("", status_code=201, summary="Register a base model (admin)", response_model=views.BaseView,
             responses=errors(400, 401, 403, 409, 422, why={409: "a base (or alias) of that name is registered"}))
def create(body: BaseIn, session: Session = Depends(db), tok: ApiToken | None = Depends(token)) -> dict:
    require(tok, None, "admin")
    registry.check_name(body.name, "base name")
    base = registry.create_base(session, body.name, body.architecture,
                                {m: list(s) for m, s in body.module_shapes.items()},
                                aliases=body.aliases, source=body.source)
    session.commit()
    return views.base_view(base)


@router.get("", summary="List base models", response_model=views.BaseList)
def list_all(session: Session = Depends(db)) -> dict:
    return {"items": [views.base_view(b) for b in registry.list_bases(session)]}


@router.get("/{name:path}", summary="One base model, by name or alias", response_model=views.BaseView,
            responses=errors(404, 422))
def show(name: str, session: Session = Depends(db)) -> dict:
    base = registry.find_base(session, name)
    if base is None:
        raise NotFound(f"no base model named {name!r}")
    return views.base_view(base)
