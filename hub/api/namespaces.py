"""Namespaces: created implicitly by a first upload (public), or explicitly by an admin, e.g. as private."""
from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from hub import registry
from hub.api.deps import can_read, db, require, token
from hub.api.openapi import NAME_MAX, NAME_PATTERN, errors
from hub.models import ApiToken, Namespace

router = APIRouter(prefix="/api/v1/namespaces", tags=["namespaces"], responses=errors(503))


class NamespaceIn(BaseModel):
    name: str = Field(pattern=NAME_PATTERN, max_length=NAME_MAX)
    private: bool = False


class NamespaceView(BaseModel):
    name: str
    private: bool


class NamespaceList(BaseModel):
    items: list[NamespaceView]


def _view(ns: Namespace) -> dict:
    return {"name": ns.name, "private": ns.private}


@router.post("", status_code=201, summary="Create or update a namespace (admin)", response_model=NamespaceView,
             responses=errors(400, 401, 403, 422))
def create(body: NamespaceIn, session: Session = Depends(db), tok: ApiToken | None = Depends(token)) -> dict:
    require(tok, None, "admin")
    registry.check_name(body.name, "namespace")
    ns = registry.ensure_namespace(session, body.name, private=body.private)
    session.commit()
    return _view(ns)


@router.get("", summary="Namespaces the caller can read", response_model=NamespaceList, responses=errors(401))
def list_all(session: Session = Depends(db), tok: ApiToken | None = Depends(token)) -> dict:
    rows = session.query(Namespace).order_by(Namespace.name).all()
    return {"items": [_view(ns) for ns in rows if can_read(tok, ns)]}
