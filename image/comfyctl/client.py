"""ComfyUI API client: run one API-format workflow end to end against a deployed service.

Behaviour of the server it relies on (tests/reference/comfyui-api/README.md, captured from 0.3.64):
- POST /prompt answers 200 {prompt_id, number, node_errors} or 400 {error, node_errors};
- the websocket /ws?clientId=ID sends, per prompt: execution_start, execution_cached, executing per
  node (progress {value, max} while sampling), executed (with output files), then execution_success
  BEFORE status and the final `executing {node: null}`; a run-time failure sends execution_error;
- /history/{id} is {} until the prompt is done; the entry is written after execution_success, so it
  is polled briefly after that message rather than read once.

Behind the ALB every request must reach the same ComfyUI pod: the stickiness cookies (AWSALB,
AWSALBCORS) are taken by one requests.Session on the first request and sent with every later
request and with the websocket handshake.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import secrets
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit, urlunsplit

import requests

from image.comfyctl.errors import CliError

# Node classes whose input names a file in ComfyUI's input folder.
INPUT_FILE_NODES = {"LoadImage": "image", "LoadImageMask": "image", "VHS_LoadVideo": "video"}
SEED_INPUTS = ("seed", "noise_seed")
MAX_SEED = 2**63  # below ComfyUI's 0xffffffffffffffff and within JSON's integer range everywhere
HTTP_TIMEOUT = 30


class PromptRejected(CliError):
    pass


class PromptFailed(CliError):
    pass


class PromptTimeout(CliError):
    pass


# --- the workflow file --------------------------------------------------------------------------


def load_workflow(path: Path) -> dict:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as err:
        raise CliError(f"{path}: cannot read workflow ({err.strerror})", exit_code=2) from None
    except ValueError as err:
        raise CliError(f"{path}: not JSON ({err})", exit_code=2) from None
    if isinstance(data, dict) and "nodes" in data and "links" in data:
        raise CliError(
            f"{path}: this is a UI workflow; in ComfyUI use Workflow > Export (API) and pass that file", exit_code=2
        )
    if not isinstance(data, dict) or not data:
        raise CliError(f"{path}: not an API-format workflow (an object of node id -> node)", exit_code=2)
    for node_id, node in data.items():
        if not isinstance(node, dict) or "class_type" not in node or not isinstance(node.get("inputs"), dict):
            raise CliError(
                f"{path}: node {node_id!r} has no class_type/inputs: not an API-format workflow", exit_code=2
            )
    return data


def _parse_value(raw: str) -> object:
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def apply_sets(workflow: dict, assignments: list[str]) -> set[tuple[str, str]]:
    """Apply `--set NODE.INPUT=VALUE`; returns the (node, input) pairs set."""
    done = set()
    for assignment in assignments:
        target, sep, raw = assignment.partition("=")
        node_id, dot, name = target.partition(".")
        if not sep or not dot or not node_id or not name:
            raise CliError(f"--set {assignment!r}: use NODE.INPUT=VALUE, e.g. --set 6.text='a red fox'", exit_code=2)
        if node_id not in workflow:
            raise CliError(f"--set {assignment!r}: no node {node_id!r} in the workflow", exit_code=2)
        inputs = workflow[node_id]["inputs"]
        if name not in inputs:
            known = ", ".join(sorted(inputs))
            raise CliError(f"--set {assignment!r}: node {node_id} has no input {name!r} (inputs: {known})", exit_code=2)
        inputs[name] = _parse_value(raw)
        done.add((node_id, name))
    return done


def randomize_seeds(workflow: dict, keep: set[tuple[str, str]] = frozenset()) -> dict[str, int]:
    """New random values for every literal seed/noise_seed input not set explicitly."""
    changed = {}
    for node_id, node in workflow.items():
        for name in SEED_INPUTS:
            value = node["inputs"].get(name)
            if isinstance(value, int) and not isinstance(value, bool) and (node_id, name) not in keep:
                node["inputs"][name] = secrets.randbelow(MAX_SEED)
                changed[f"{node_id}.{name}"] = node["inputs"][name]
    return changed


def referenced_inputs(workflow: dict) -> list[tuple[str, str, str]]:
    """(node id, input name, file name) for every literal input file the workflow loads."""
    found = []
    for node_id, node in workflow.items():
        name = INPUT_FILE_NODES.get(node["class_type"])
        value = node["inputs"].get(name) if name else None
        if isinstance(value, str) and value:
            found.append((node_id, name, value.removesuffix(" [input]")))
    return found


# --- the run ------------------------------------------------------------------------------------


@dataclass
class RunResult:
    prompt_id: str
    seconds: float
    files: list[Path]
    cached: bool = False


@dataclass
class Progress:
    """What the user sees while the prompt runs (stderr)."""

    quiet: bool = False
    stream: object = field(default_factory=lambda: sys.stderr)
    _bar: object = None
    _bar_node: str | None = None

    def say(self, message: str) -> None:
        if not self.quiet:
            self.close_bar()
            print(message, file=self.stream, flush=True)

    def step(self, node: str, value: int, maximum: int) -> None:
        if self.quiet:
            return
        from tqdm import tqdm

        if self._bar is None or self._bar_node != node:
            self.close_bar()
            self._bar = tqdm(total=maximum, desc=f"node {node}", unit="step", file=self.stream, leave=False)
            self._bar_node = node
        self._bar.total = maximum
        self._bar.n = value
        self._bar.refresh()

    def close_bar(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
            self._bar_node = None


class ComfyClient:
    def __init__(
        self,
        url: str,
        token: str | None = None,
        cookies: list[str] = (),
        progress: Progress | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise CliError(f"--url {url!r}: expected http(s)://host[:port][/path]", exit_code=2)
        self.base = url.rstrip("/")
        self.session = requests.Session()
        self.session.headers["User-Agent"] = "comfyctl"
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"
        for cookie in cookies:
            name, sep, value = cookie.partition("=")
            if not sep or not name.strip():
                raise CliError(f"--cookie {cookie!r}: use NAME=VALUE", exit_code=2)
            self.session.cookies.set(name.strip(), value.strip(), domain=parts.hostname, path="/")
        self.progress = progress or Progress()
        self.clock = clock
        self.client_id = str(uuid.uuid4())
        self._started = False
        self._timeout_seconds = 0.0

    # HTTP ---------------------------------------------------------------------------------------

    def _request(self, method: str, path: str, **kwargs) -> requests.Response:
        kwargs.setdefault("timeout", HTTP_TIMEOUT)
        try:
            response = self.session.request(method, f"{self.base}{path}", **kwargs)
        except requests.ConnectionError as err:
            raise CliError(f"cannot reach {self.base}: {_reason(err)}") from None
        except requests.Timeout:
            raise CliError(f"{method} {path}: no answer from {self.base} within {kwargs['timeout']}s") from None
        if response.status_code in (401, 403):
            raise CliError(
                f"{method} {path}: HTTP {response.status_code} from {self.base}: pass --token or --cookie "
                "(access control of this environment)"
            )
        return response

    def _json(self, method: str, path: str, **kwargs) -> object:
        response = self._request(method, path, **kwargs)
        if response.status_code != 200:
            raise CliError(f"{method} {path}: HTTP {response.status_code} {response.text[:200]!r}")
        try:
            return response.json()
        except ValueError:
            raise CliError(f"{method} {path}: answer is not JSON (is {self.base} a ComfyUI server?)") from None

    def system_stats(self) -> dict:
        return self._json("GET", "/system_stats")

    def input_digest(self, name: str) -> str | None:
        """SHA-256 of an input file on the server, or None when it is not there."""
        subfolder, _, filename = name.rpartition("/")
        params = {"filename": filename, "subfolder": subfolder, "type": "input"}
        response = self._request("GET", "/view", params=params, stream=True)
        with response:
            if response.status_code == 404:
                return None
            if response.status_code != 200:
                raise CliError(f"GET /view {name}: HTTP {response.status_code}")
            digest = hashlib.sha256()
            for chunk in response.iter_content(1 << 16):
                digest.update(chunk)
            return digest.hexdigest()

    def upload(self, path: Path, subfolder: str = "") -> str:
        with open(path, "rb") as handle:
            response = self._request(
                "POST",
                "/upload/image",
                files={"image": (path.name, handle, "application/octet-stream")},
                data={"overwrite": "true", "type": "input", "subfolder": subfolder},
            )
        if response.status_code != 200:
            raise CliError(f"upload of {path}: HTTP {response.status_code} {response.text[:200]!r}")
        answer = response.json()
        return f"{answer['subfolder']}/{answer['name']}" if answer.get("subfolder") else answer["name"]

    def queue_prompt(self, workflow: dict) -> str:
        response = self._request("POST", "/prompt", json={"prompt": workflow, "client_id": self.client_id})
        if response.status_code == 400:
            raise PromptRejected(_rejection(response))
        if response.status_code != 200:
            raise CliError(f"POST /prompt: HTTP {response.status_code} {response.text[:200]!r}")
        return response.json()["prompt_id"]

    def history(self, prompt_id: str) -> dict | None:
        entry = self._json("GET", f"/history/{prompt_id}")
        return entry.get(prompt_id) if isinstance(entry, dict) else None

    def cancel_pending(self, prompt_id: str) -> None:
        # Only takes it out of the queue: interrupting would stop whatever runs, maybe someone else's prompt.
        with contextlib.suppress(CliError):
            self._request("POST", "/queue", json={"delete": [prompt_id]}, timeout=10)

    def download(self, item: dict, out_dir: Path) -> Path:
        params = {"filename": item["filename"], "subfolder": item.get("subfolder", ""), "type": item.get("type", "")}
        relative = PurePosixPath(item.get("subfolder") or ".") / item["filename"]
        if relative.is_absolute() or ".." in relative.parts:
            raise CliError(f"server returned an unsafe output path {str(relative)!r}")
        target = out_dir.joinpath(*relative.parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        response = self._request("GET", "/view", params=params, stream=True, timeout=300)
        with response:
            if response.status_code != 200:
                raise CliError(f"GET /view {item['filename']}: HTTP {response.status_code}")
            with open(target, "wb") as handle:
                for chunk in response.iter_content(1 << 20):
                    handle.write(chunk)
        return target

    # websocket ----------------------------------------------------------------------------------

    def _ws_url(self) -> str:
        parts = urlsplit(self.base)
        scheme = "wss" if parts.scheme == "https" else "ws"
        return urlunsplit((scheme, parts.netloc, f"{parts.path}/ws", f"clientId={self.client_id}", ""))

    def open_websocket(self):
        """The websocket with the session's cookies and token, or None (the caller polls instead)."""
        import websocket

        headers = []
        if "Authorization" in self.session.headers:
            headers.append(f"Authorization: {self.session.headers['Authorization']}")
        cookie = "; ".join(f"{c.name}={c.value}" for c in self.session.cookies)
        try:
            ws = websocket.create_connection(
                self._ws_url(), header=headers, cookie=cookie or None, timeout=HTTP_TIMEOUT, enable_multithread=False
            )
        except (websocket.WebSocketException, OSError) as err:
            self.progress.say(f"websocket unavailable ({_reason(err)}); following the prompt by polling /history")
            return None
        # An ALB may refresh its stickiness cookie on the upgrade answer too.
        for header, value in (ws.getheaders() or {}).items():
            if header.lower() == "set-cookie":
                for morsel in SimpleCookie(value).values():
                    self.session.cookies.set(morsel.key, morsel.value, domain=urlsplit(self.base).hostname, path="/")
        return ws

    def follow_websocket(self, ws, prompt_id: str, deadline: float, workflow: dict) -> str:
        """Read messages until the prompt ends; 'success', or 'lost' when the socket dropped."""
        import websocket

        while True:
            remaining = deadline - self.clock()
            if remaining <= 0:
                raise self._timeout(prompt_id)
            ws.settimeout(min(remaining, 5.0))
            try:
                raw = ws.recv()
            except websocket.WebSocketTimeoutException:
                continue
            except (websocket.WebSocketException, OSError) as err:
                self.progress.say(f"websocket closed ({_reason(err)}); polling /history")
                return "lost"
            if not isinstance(raw, str):
                continue  # binary frames are live previews
            try:
                message = json.loads(raw)
            except ValueError:
                continue
            kind, data = message.get("type"), message.get("data") or {}
            if data.get("prompt_id") not in (None, prompt_id):
                continue  # another prompt of this client id
            if kind == "execution_start":
                self._started = True
                self.progress.say("started")
            elif kind == "execution_cached":
                if data.get("nodes"):
                    self.progress.say(f"cached: nodes {', '.join(map(str, data['nodes']))}")
            elif kind == "executing":
                node = data.get("node")
                if node is None:
                    return "success"  # older servers end with this alone
                self.progress.say(f"node {node} ({workflow.get(str(node), {}).get('class_type', '?')})")
            elif kind == "progress":
                self.progress.step(str(data.get("node")), int(data.get("value", 0)), int(data.get("max", 1)))
            elif kind == "execution_success":
                return "success"
            elif kind == "execution_error":
                raise PromptFailed(_execution_error(prompt_id, data))
            elif kind == "execution_interrupted":
                raise PromptFailed(f"prompt {prompt_id} was interrupted on the server (node {data.get('node_id')})")

    def wait_history(self, prompt_id: str, deadline: float, interval: float = 1.0) -> dict:
        """Poll /history/{id} until the prompt has an entry with a final status."""
        delay = min(interval, 0.25)
        while True:
            entry = self.history(prompt_id)
            if entry is not None:
                status = entry.get("status") or {}
                if status.get("status_str") == "error":
                    errors = [data for kind, data in status.get("messages", []) if kind == "execution_error"]
                    raise PromptFailed(
                        _execution_error(prompt_id, errors[0]) if errors else f"prompt {prompt_id} failed on the server"
                    )
                if status.get("completed", True):
                    return entry
            remaining = deadline - self.clock()
            if remaining <= 0:
                raise self._timeout(prompt_id)
            time.sleep(min(delay, remaining))
            delay = min(delay * 2, interval)

    def _timeout(self, prompt_id: str) -> PromptTimeout:
        self.progress.close_bar()
        self.cancel_pending(prompt_id)
        return PromptTimeout(
            f"prompt {prompt_id} did not finish within {self._timeout_seconds:g}s (removed from the queue if it "
            f"had not started; raise --timeout for long workflows)"
        )

    # the whole run ------------------------------------------------------------------------------

    def prepare_inputs(self, workflow: dict, inputs: list[Path], workflow_dir: Path) -> None:
        """Upload the input files the workflow needs and point its loader nodes at them."""
        references = referenced_inputs(workflow)
        given = {path.name: path for path in inputs}
        for path in inputs:
            if not path.is_file():
                raise CliError(f"--input {path}: no such file", exit_code=2)
        unmatched_inputs = [
            path for path in inputs if not any(ref[2].split("/")[-1] == path.name for ref in references)
        ]
        unmatched_refs = [ref for ref in references if ref[2].split("/")[-1] not in given]
        if unmatched_inputs:
            if len(unmatched_inputs) == 1 and len(unmatched_refs) == 1:
                node_id, name, _ = unmatched_refs[0]
                workflow[node_id]["inputs"][name] = unmatched_inputs[0].name
                references = referenced_inputs(workflow)
            else:
                raise CliError(
                    f"--input {unmatched_inputs[0]}: no loader node references {unmatched_inputs[0].name!r}; "
                    f"point one at it with --set NODE.image={unmatched_inputs[0].name}",
                    exit_code=2,
                )
        for node_id, name, value in references:
            filename = value.split("/")[-1]
            local = given.get(filename)
            if local is None and (workflow_dir / filename).is_file():
                local = workflow_dir / filename
            on_server = self.input_digest(value)
            if local is None:
                if on_server is None:
                    raise CliError(
                        f"node {node_id} ({workflow[node_id]['class_type']}) loads {value!r}: not on the server "
                        f"and no local file; pass --input PATH",
                        exit_code=2,
                    )
                self.progress.say(f"input {value}: already on the server")
                continue
            if on_server == hashlib.sha256(local.read_bytes()).hexdigest():
                self.progress.say(f"input {value}: already on the server (same content)")
                continue
            subfolder = value.rpartition("/")[0]
            uploaded = self.upload(local, subfolder)
            self.progress.say(f"input {local} uploaded as {uploaded}")
            workflow[node_id]["inputs"][name] = uploaded

    def run(
        self,
        workflow: dict,
        out_dir: Path,
        timeout: float,
        inputs: list[Path] = (),
        workflow_dir: Path = Path("."),
    ) -> RunResult:
        start = self.clock()
        deadline = start + timeout
        self._timeout_seconds = timeout
        self._started = False
        workflow = copy.deepcopy(workflow)
        # First request: takes the stickiness cookie, so the websocket and everything after it reach
        # the same pod.
        self.system_stats()
        ws = self.open_websocket()
        try:
            self.prepare_inputs(workflow, list(inputs), workflow_dir)
            prompt_id = self.queue_prompt(workflow)
            self.progress.say(f"prompt {prompt_id} queued")
            if ws is not None:
                self.follow_websocket(ws, prompt_id, deadline, workflow)
        finally:
            if ws is not None:
                ws.close()
        entry = self.wait_history(prompt_id, deadline)
        self.progress.close_bar()
        items = [
            item
            for output in (entry.get("outputs") or {}).values()
            for values in output.values()
            if isinstance(values, list)
            for item in values
            if isinstance(item, dict) and item.get("filename")
        ]
        out_dir.mkdir(parents=True, exist_ok=True)
        files = [self.download(item, out_dir) for item in items]
        messages = (entry.get("status") or {}).get("messages", [])
        cached = any(kind == "execution_cached" and data.get("nodes") for kind, data in messages)
        return RunResult(prompt_id=prompt_id, seconds=self.clock() - start, files=files, cached=cached)


def _reason(err: Exception) -> str:
    text = str(err).strip() or type(err).__name__
    return text.splitlines()[0][:200]


def _rejection(response: requests.Response) -> str:
    """One line out of a 400 answer: the error and the first node error."""
    try:
        body = response.json()
    except ValueError:
        return f"prompt rejected: HTTP 400 {response.text[:200]!r}"
    error = body.get("error") or {}
    message = f"prompt rejected: {error.get('message', 'invalid prompt')}"
    if error.get("details"):
        message += f" ({error['details']})"
    for node_id, node in (body.get("node_errors") or {}).items():
        for detail in node.get("errors", []):
            message += (
                f"; node {node_id} ({node.get('class_type', '?')}): {detail.get('details') or detail.get('message')}"
            )
            break
        break
    return message


def _execution_error(prompt_id: str, data: dict) -> str:
    exception = (data.get("exception_message") or "").strip().splitlines()
    return (
        f"prompt {prompt_id} failed in node {data.get('node_id')} ({data.get('node_type')}): "
        f"{data.get('exception_type', 'error')}: {exception[0] if exception else ''}"
    ).rstrip(": ")
