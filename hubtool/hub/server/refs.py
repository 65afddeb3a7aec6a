"""Ref routes: list refs, create/delete branches and tags, pull requests (list, details,
merge, close/reopen).

Branch and tag names follow git's ref-name rules and may not look like a commit id; a pull
request is opened by a commit with ``?create_pr=1`` (hubtool.hub.server.commits) and keeps
its ``refs/pr/N`` after it is merged or closed.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hubtool.hub.server.web import (
    endpoint,
    hub,
    in_thread,
    json_response,
    part,
    query_flag,
    read_json_object,
    repo_id_of,
    require_user,
    visible_repo,
    writable_repo,
)
from hubtool.hub.store import StoreError, conflicting_files

_PAGE = 50


@endpoint
async def list_refs(request: Request) -> Response:
    repo_id = repo_id_of(request)
    await visible_repo(request, repo_id)
    refs = await in_thread(hub(request).store.refs, repo_id)

    def rows(prefix: str, items: dict[str, str]) -> list[dict[str, str]]:
        return [{"name": n, "ref": f"{prefix}{n}", "targetCommit": c} for n, c in sorted(items.items())]

    out: dict[str, Any] = {"branches": rows("refs/heads/", refs["branches"]), "converts": [],
                           "tags": rows("refs/tags/", refs["tags"])}
    if query_flag(request, "include_prs"):
        out["pullRequests"] = [{"name": f"refs/pr/{n}", "ref": f"refs/pr/{n}", "targetCommit": c}
                               for n, c in sorted(refs["prs"].items(), key=lambda kv: int(kv[0]))]
    return json_response(out)


@endpoint
async def create_branch(request: Request) -> Response:
    repo_id = repo_id_of(request)
    await writable_repo(request, repo_id)
    branch = part(request, "rest")
    body = await read_json_object(request)
    start = body.get("startingPoint")
    if start is not None and not isinstance(start, str):
        raise StoreError(400, "startingPoint must be a revision")
    await in_thread(hub(request).store.create_branch, repo_id, branch, starting_point=start)
    return json_response({})


@endpoint
async def delete_branch(request: Request) -> Response:
    repo_id = repo_id_of(request)
    await writable_repo(request, repo_id)
    await in_thread(hub(request).store.delete_branch, repo_id, part(request, "rest"))
    return json_response({})


@endpoint
async def create_tag(request: Request) -> Response:
    repo_id = repo_id_of(request)
    await writable_repo(request, repo_id)
    revision = part(request, "rest")
    body = await read_json_object(request)
    tag = body.get("tag")
    if not isinstance(tag, str):
        raise StoreError(400, "a tag needs a 'tag' name")
    await in_thread(hub(request).store.create_tag, repo_id, tag, revision=revision)
    return json_response({})


@endpoint
async def delete_tag(request: Request) -> Response:
    repo_id = repo_id_of(request)
    await writable_repo(request, repo_id)
    await in_thread(hub(request).store.delete_tag, repo_id, part(request, "rest"))
    return json_response({})


def discussion_json(repo_id: str, pull: dict[str, Any]) -> dict[str, Any]:
    return {"num": pull["num"], "title": pull["title"], "status": pull["status"], "createdAt": pull["createdAt"],
            "author": {"name": pull["author"]}, "repo": {"name": repo_id, "type": "model"},
            "isPullRequest": True, "numComments": 0, "pinned": False}


@endpoint
async def list_discussions(request: Request) -> Response:
    repo_id = repo_id_of(request)
    await visible_repo(request, repo_id)
    query = request.query_params
    kind, status, author = query.get("type", "all"), query.get("status", "all"), query.get("author")
    page = int(query.get("p") or 0)
    pulls = await in_thread(hub(request).store.pulls, repo_id)
    chosen = [p for p in reversed(pulls)
              if kind in ("all", "pull_request") and status in ("all", p["status"])
              and (author is None or p["author"] == author)]
    start = page * _PAGE
    return json_response({"discussions": [discussion_json(repo_id, p) for p in chosen[start:start + _PAGE]],
                          "count": len(chosen), "start": start,
                          "numClosedDiscussions": sum(p["status"] != "open" for p in pulls)})


def _number(request: Request) -> int:
    number = int(request.path_params["num"])
    if number <= 0:
        raise StoreError(400, "discussion numbers start at 1")
    return number


@endpoint
async def discussion_details(request: Request) -> Response:
    repo_id = repo_id_of(request)
    await visible_repo(request, repo_id)
    number = _number(request)
    store = hub(request).store

    def details() -> dict[str, Any]:
        pull = store.pull(repo_id, number)
        return {**discussion_json(repo_id, pull), "events": pull["events"],
                "changes": {"base": f"refs/heads/{pull['base']}", "mergeCommitId": pull["mergeCommitId"]},
                "filesWithConflicts": conflicting_files(store, repo_id=repo_id, pull=pull), "diff": ""}

    return json_response(await in_thread(details))


@endpoint
async def merge(request: Request) -> Response:
    repo_id = repo_id_of(request)
    _, user = await writable_repo(request, repo_id)
    number = _number(request)
    body = await read_json_object(request)
    comment = body.get("comment") if isinstance(body.get("comment"), str) else None
    await in_thread(hub(request).store.merge_pull, repo_id, number, author=user.name, comment=comment)
    return json_response({})


@endpoint
async def change_status(request: Request) -> Response:
    """Close or reopen: for writers of the namespace and the pull request's author."""
    repo_id = repo_id_of(request)
    await visible_repo(request, repo_id)
    user = require_user(request)
    number = _number(request)
    store = hub(request).store
    if not user.owns(repo_id.split("/")[0]) and (await in_thread(store.pull, repo_id, number))["author"] != user.name:
        raise StoreError(403, "only the author or a writer of the repo may change this pull request")
    body = await read_json_object(request)
    event = await in_thread(store.set_pull_status, repo_id, number, body.get("status"), author=user.name)
    return json_response({"newStatus": event})


ROUTES = [
    Route("/api/models/{ns}/{name}/refs", list_refs, methods=["GET"]),
    Route("/api/models/{ns}/{name}/branch/{rest:path}", create_branch, methods=["POST"]),
    Route("/api/models/{ns}/{name}/branch/{rest:path}", delete_branch, methods=["DELETE"]),
    Route("/api/models/{ns}/{name}/tag/{rest:path}", create_tag, methods=["POST"]),
    Route("/api/models/{ns}/{name}/tag/{rest:path}", delete_tag, methods=["DELETE"]),
    Route("/api/models/{ns}/{name}/discussions", list_discussions, methods=["GET"]),
    Route("/api/models/{ns}/{name}/discussions/{num:int}", discussion_details, methods=["GET"]),
    Route("/api/models/{ns}/{name}/discussions/{num:int}/merge", merge, methods=["POST"]),
    Route("/api/models/{ns}/{name}/discussions/{num:int}/status", change_status, methods=["POST"]),
]
