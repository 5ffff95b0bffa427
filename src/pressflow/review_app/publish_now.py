"""Publishing from the page: the publish button, its progress for the page's script, and
publishing after an approval (or saying the scheduled deployment will)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from .base import checked_form, flash, redirect, signed_in, signed_in_api
from .publishing import SCHEDULED_DEPLOYMENT
from .security import Reviewer

router = APIRouter()


@router.post("/publish", dependencies=[Depends(checked_form)])
def publish(request: Request, reviewer: Reviewer = Depends(signed_in)):
    _publish(request)
    return redirect("/")


@router.get("/publishing")
def publishing(request: Request, reviewer: Reviewer = Depends(signed_in_api)):
    return JSONResponse(request.app.state.publisher.status() or {"running": False, "ok": None, "text": ""},
                        headers={"Cache-Control": "no-store"})


def publish_if_wanted(request: Request, approved: int) -> None:
    if not approved:
        return
    if request.app.state.mode.on_approve:
        _publish(request)
    else:
        flash(request, f"Publishing is left to the scheduled deployment {SCHEDULED_DEPLOYMENT}.")


def _publish(request: Request) -> None:
    try:
        flash(request, request.app.state.publisher.request())
    except Exception as exc:  # noqa: BLE001 - the approval stands; say why publishing did not
        flash(request, f"Approved, but publishing failed: {type(exc).__name__}: {exc}", "error")
