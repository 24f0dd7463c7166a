"""A stand-in for the Hugging Face Hub's HTTP API, as much of it as an upload needs: who is logged in, creating a
repo, the model card's metadata check, the pre-upload check and the commit. huggingface_hub itself talks to it
(HF_ENDPOINT), so the tests run the real client, headers and token handling included, with the Hub's answers
stood in for."""

from __future__ import annotations

import base64
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import yaml


class FakeHub:
    """``with FakeHub(token) as hub:`` serves on ``hub.url``; ``hub.requests`` lists (method, path, token) and
    ``hub.repos`` holds each repo's files as committed ({repo: {path: bytes}}) and whether it is private."""

    def __init__(self, token: str, user: str = "alice"):
        self.token, self.user = token, user
        self.requests: list[tuple[str, str, str | None]] = []
        self.repos: dict[str, dict] = {}
        self.validated: list = []  # each model card's metadata as the YAML check received it
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _reply(self, code: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _authorised(self) -> bool:
                auth = self.headers.get("Authorization", "")
                token = auth[len("Bearer "):] if auth.startswith("Bearer ") else None
                hub.requests.append((self.command, self.path, token))
                if token != hub.token:
                    self._reply(401, {"error": "Invalid credentials in Authorization header"})
                    return False
                return True

            def do_GET(self):  # noqa: N802
                if self.path.startswith("/api/agent-harnesses"):  # a public registry huggingface_hub may read
                    return self._reply(404, {"error": "not stood in for"})  # (and does without)
                if not self._authorised():
                    return
                if self.path.startswith("/api/whoami-v2"):
                    return self._reply(200, {"type": "user", "name": hub.user, "orgs": []})
                self._reply(404, {"error": f"not stood in for: GET {self.path}"})

            def do_POST(self):  # noqa: N802
                body = self._body()
                if not self._authorised():
                    return
                if self.path.startswith("/api/repos/create"):
                    spec = json.loads(body)
                    repo = f"{spec.get('organization') or hub.user}/{spec['name']}"
                    hub.repos.setdefault(repo, {"files": {}, "private": spec.get("visibility") == "private"})
                    return self._reply(200, {"url": f"{hub.url}/{repo}", "name": repo})
                if self.path.startswith("/api/validate-yaml"):  # the model card's metadata, as the Hub checks it
                    content = json.loads(body)["content"]
                    m = re.match(r"^---\n(.*?)\n---\n", content, flags=re.S)
                    meta = yaml.safe_load(m.group(1)) if m else None
                    hub.validated.append(meta)
                    if not isinstance(meta, dict):
                        return self._reply(400, {"errors": [{"message": "no YAML metadata block"}]})
                    return self._reply(200, {"errors": [], "warnings": []})
                m = re.match(r"^/api/models/(.+)/preupload/([^/?]+)", self.path)
                if m:
                    files = json.loads(body)["files"]
                    return self._reply(200, {"files": [{"path": f["path"], "uploadMode": "regular",
                                                        "shouldIgnore": False, "oid": None} for f in files]})
                m = re.match(r"^/api/models/(.+)/commit/([^/?]+)", self.path)
                if m:
                    repo = m.group(1)
                    for line in body.decode().splitlines():
                        item = json.loads(line)
                        if item["key"] == "file":
                            v = item["value"]
                            hub.repos[repo]["files"][v["path"]] = base64.b64decode(v["content"])
                    return self._reply(200, {"commitUrl": f"{hub.url}/{repo}/commit/{'ab' * 20}",
                                             "commitOid": "ab" * 20, "pullRequestUrl": None})
                self._reply(404, {"error": f"not stood in for: POST {self.path}"})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> "FakeHub":
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
