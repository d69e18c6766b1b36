"""The admin endpoint for blob garbage collection (the same collection as `adaptarium gc`; see hub.gc)."""
from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy.orm import Session

from hub import gc
from hub.api.deps import db, require, store, token
from hub.api.openapi import errors
from hub.models import ApiToken
from hub.storage import BlobStore

router = APIRouter(prefix="/api/v1/admin", tags=["admin"], responses=errors(503))


@router.post("/gc", summary="Remove blobs no version names, older than a grace period (admin)",
             responses=errors(401, 403, 422))
def collect(request: Request, grace_s: float = Query(gc.DEFAULT_GRACE_S, ge=0, le=10 * 365 * 86400,
                                                     description="keep anything claimed or written this recently"),
            dry_run: bool = Query(False, description="report what would be removed, remove nothing"),
            session: Session = Depends(db), tok: ApiToken | None = Depends(token),
            blobs: BlobStore = Depends(store)) -> dict:
    require(tok, None, "admin")
    session.close()  # the collection opens a short session per blob; hold no connection while it runs
    return gc.collect_garbage(request.app.state.session_factory, blobs, grace_s=grace_s, dry_run=dry_run).as_dict()
