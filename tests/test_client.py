"""`comfyctl run` against an in-process server that speaks ComfyUI's HTTP + websocket API.

The server replays what a real ComfyUI 0.3.64 sent (tests/reference/comfyui-api): the captured
POST /prompt answers (200 and the three kinds of 400), history entries, and the websocket messages
of each prompt in their real order (execution_success before the final `executing {node: null}`,
execution_error for a run-time failure). Like the real server it writes the history entry only
after execution_success, validates LoadImage inputs against its input folder, and answers /view
with 404 for a missing file. In front of it sits what the ALB does: a stickiness cookie set on
every answer and required on every later request (a request without it would reach another pod).
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web

from image.comfyctl import cli
from tests.conftest import PROJECT, REFERENCE

CAPTURES = REFERENCE / "comfyui-api"
SDXL_WORKFLOW = PROJECT / "image" / "workflows" / "sdxl_refiner_api.json"
KNOWN_CLASSES = {
    "EmptyImage",
    "SaveImage",
    "LoadImage",
    "CheckpointLoaderSimple",
    "EmptyLatentImage",
    "CLIPTextEncode",
    "KSamplerAdvanced",
    "VAEDecode",
}


def capture(name: str):
    return json.loads((CAPTURES / name).read_text())


def prompt_messages(file: str, prompt_id: str) -> list[dict]:
    """The websocket messages the real server sent for one prompt: the queue status after the
    submission through the final `executing {node: null}` (the connect-time status excluded)."""
    messages = [m[1] if isinstance(m, list) else m for m in capture(file)]
    end = next(
        i
        for i, m in enumerate(messages)
        if m["type"] == "executing" and m["data"]["node"] is None and m["data"]["prompt_id"] == prompt_id
    )
    start = next(
        i for i, m in enumerate(messages) if m["type"] == "execution_start" and m["data"]["prompt_id"] == prompt_id
    )
    while start > 0 and messages[start - 1]["type"] == "status" and "sid" not in messages[start - 1]["data"]:
        start -= 1
    return messages[start : end + 1]


@dataclass
class Scenario:
    """One captured prompt: its messages, its history entry and the id they were captured with."""

    captured_id: str
    messages: list[dict]
    history: dict
    delay: float = 0.0  # between websocket messages
    history_delay: float = 0.2  # after execution_success, before the history entry exists
    stop_after: str | None = None  # message type after which the prompt hangs
    reject_with: str | None = None  # a captured 400 answer
    progress_node: str | None = None  # sampling progress {value, max} for this node


def success_scenario(**changes) -> Scenario:
    pid = "e028ff21-a96e-4f0e-9ecd-aee3a2d52de1"
    return Scenario(pid, prompt_messages("ws_msgs.json", pid), capture("empty_save_history.json")[pid], **changes)


def load_image_scenario() -> Scenario:
    pid = "eaa2e18b-1d0e-462a-b6e7-c2fe689fa35e"
    return Scenario(pid, prompt_messages("ws_msgs.json", pid), capture("load_save_history.json")[pid])


def failing_scenario() -> Scenario:
    pid = "538fcf65-cf66-462b-abdb-597e187f4291"
    return Scenario(pid, prompt_messages("ws_msgs2.json", pid), capture("error_history.json")[pid])


def captured_prompt(history_file: str) -> dict:
    entry = next(iter(capture(history_file).values()))
    return copy.deepcopy(entry["prompt"][2])


@dataclass
class ServerState:
    scenario: Scenario = field(default_factory=success_scenario)
    token: str | None = None
    required_cookie: tuple[str, str] | None = None
    websocket: bool = True
    issued: set[str] = field(default_factory=set)
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)  # method, path, AWSALB
    violations: list[str] = field(default_factory=list)
    inputs: dict[str, bytes] = field(default_factory=dict)
    uploads: int = 0
    outputs: dict[str, bytes] = field(default_factory=dict)
    history: dict[str, dict] = field(default_factory=dict)
    prompts: dict[str, dict] = field(default_factory=dict)
    deleted: list[str] = field(default_factory=list)
    sockets: dict[str, web.WebSocketResponse] = field(default_factory=dict)
    ws_cookies: list[str | None] = field(default_factory=list)
    number: int = 0


class FakeComfyUI:
    def __init__(self) -> None:
        self.state = ServerState()
        self.loop = asyncio.new_event_loop()
        self.tasks: set[asyncio.Task] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # the ALB in front: stickiness cookie, access control ------------------------------------

    @web.middleware
    async def edge(self, request: web.Request, handler):
        state = self.state
        cookie = request.cookies.get("AWSALB")
        state.requests.append((request.method, request.path, cookie))
        if state.token and request.headers.get("Authorization") != f"Bearer {state.token}":
            return web.Response(status=401, text="Unauthorized")
        if state.required_cookie and request.cookies.get(state.required_cookie[0]) != state.required_cookie[1]:
            return web.Response(status=401, text="login required")
        # A run starts with GET /system_stats, which gets the cookie (the ALB picks a target); any
        # other request without it would have reached another pod.
        if cookie not in state.issued and (request.method, request.path) != ("GET", "/system_stats"):
            state.violations.append(f"{request.method} {request.path} without the stickiness cookie")
            return web.Response(status=503, text="reached another target")
        response = await handler(request)
        if not response.prepared:
            self.stick(response)
        return response

    def stick(self, response: web.StreamResponse) -> None:
        # The ALB refreshes the cookie on every answer; any value it issued stays valid.
        value = f"alb-{uuid.uuid4().hex[:8]}"
        self.state.issued.add(value)
        response.set_cookie("AWSALB", value, path="/")
        response.set_cookie("AWSALBCORS", value, path="/", samesite="None")

    # ComfyUI ------------------------------------------------------------------------------------

    async def system_stats(self, request):
        return web.json_response(capture("system_stats.json"))

    async def get_prompt(self, request):
        running = sum(1 for t in self.tasks if not t.done())
        return web.json_response({"exec_info": {"queue_remaining": running}})

    async def queue(self, request):
        if request.method == "POST":
            self.state.deleted += (await request.json()).get("delete", [])
            return web.Response(status=200)
        return web.json_response(capture("queue_idle.json"))

    def validate(self, prompt: dict) -> tuple[dict, int] | None:
        for node_id, node in prompt.items():
            if node.get("class_type") not in KNOWN_CLASSES:
                body = capture("bad_class_prompt_resp.json")
                body["error"]["message"] = f"Cannot execute because node {node.get('class_type')} does not exist."
                body["error"]["details"] = f"Node ID '#{node_id}'"
                return body, 400
        if not any(node["class_type"] == "SaveImage" for node in prompt.values()):
            return capture("no_output_prompt_resp.json"), 400
        for node_id, node in prompt.items():
            image = node["inputs"].get("image")
            if node["class_type"] == "LoadImage" and image not in self.state.inputs:
                body = capture("bad_input_prompt_resp.json")
                error = body["node_errors"].pop("10")
                error["errors"][0]["details"] = f"image - Invalid image file: {image}"
                body["node_errors"][node_id] = error
                return body, 400
        return None

    async def post_prompt(self, request):
        body = await request.json()
        scenario = self.state.scenario
        rejected = (capture(scenario.reject_with), 400) if scenario.reject_with else self.validate(body["prompt"])
        if rejected:
            return web.json_response(rejected[0], status=rejected[1])
        prompt_id = str(uuid.uuid4())
        number = self.state.number
        self.state.number += 1
        self.state.prompts[prompt_id] = body["prompt"]
        task = asyncio.ensure_future(self.execute(scenario, prompt_id, number, body))
        self.tasks.add(task)
        return web.json_response({"prompt_id": prompt_id, "number": number, "node_errors": {}})

    async def execute(self, scenario: Scenario, prompt_id: str, number: int, body: dict) -> None:
        def mine(value):
            return json.loads(json.dumps(value).replace(scenario.captured_id, prompt_id))

        client_id = body.get("client_id")
        for message in mine(scenario.messages):
            await asyncio.sleep(scenario.delay)
            if message["type"] == "executed" and scenario.progress_node == message["data"]["node"]:
                for value in range(1, 6):
                    await self.send(client_id, {"type": "progress", "data": {"value": value, "max": 5,
                                                "prompt_id": prompt_id, "node": message["data"]["node"]}})  # fmt: skip
                    await self.send(client_id, b"\x00\x00\x00\x01preview-jpeg-bytes")
                    await asyncio.sleep(scenario.delay)
            await self.send(client_id, message)
            if message["type"] == scenario.stop_after:
                return  # hangs: never finishes
            if message["type"] in ("execution_success", "execution_error"):
                # The real server writes history after this message (task_done), then sends status.
                await asyncio.sleep(scenario.history_delay)
                entry = mine(scenario.history)
                entry["prompt"] = [number, prompt_id, body["prompt"], {"client_id": client_id}, entry["prompt"][4]]
                for output in entry["outputs"].values():
                    for image in output.get("images", []):
                        self.state.outputs[image["filename"]] = b"\x89PNG\r\n\x1a\n" + image["filename"].encode()
                self.state.history[prompt_id] = entry

    async def send(self, client_id: str | None, message) -> None:
        ws = self.state.sockets.get(client_id)
        if ws is None or ws.closed:
            return
        if isinstance(message, bytes):
            await ws.send_bytes(message)
        else:
            await ws.send_json(message)

    async def history(self, request):
        prompt_id = request.match_info["prompt_id"]
        entry = self.state.history.get(prompt_id)
        return web.json_response({prompt_id: entry} if entry else {})

    async def upload(self, request):
        fields = {}
        reader = await request.multipart()
        async for part in reader:
            fields[part.name] = (part.filename, await part.read())
        filename, data = fields["image"]
        subfolder = fields.get("subfolder", (None, b""))[1].decode()
        name = f"{subfolder}/{filename}" if subfolder else filename
        self.state.inputs[name] = data
        self.state.uploads += 1
        return web.json_response({"name": filename, "subfolder": subfolder, "type": "input"})

    async def view(self, request):
        name = request.query.get("filename", "")
        if request.query.get("subfolder"):
            name = f"{request.query['subfolder']}/{name}"
        store = {"input": self.state.inputs, "output": self.state.outputs}.get(request.query.get("type", "output"), {})
        if name not in store:
            return web.Response(status=404)
        return web.Response(body=store[name], content_type="image/png")

    async def websocket(self, request):
        self.state.ws_cookies.append(request.cookies.get("AWSALB"))
        if not self.state.websocket:
            return web.Response(status=404, text="Not Found")
        client_id = request.query.get("clientId") or uuid.uuid4().hex
        ws = web.WebSocketResponse()
        self.stick(ws)
        await ws.prepare(request)
        self.state.sockets[client_id] = ws
        await ws.send_json(
            {"type": "status", "data": {"status": {"exec_info": {"queue_remaining": 0}}, "sid": client_id}}
        )
        async for _ in ws:
            pass
        return ws

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.edge])
        app.router.add_get("/system_stats", self.system_stats)
        app.router.add_get("/prompt", self.get_prompt)
        app.router.add_post("/prompt", self.post_prompt)
        app.router.add_route("*", "/queue", self.queue)
        app.router.add_get("/history/{prompt_id}", self.history)
        app.router.add_post("/upload/image", self.upload)
        app.router.add_get("/view", self.view)
        app.router.add_get("/ws", self.websocket)
        return app

    # lifecycle ------------------------------------------------------------------------------------

    def start(self) -> None:
        ready = threading.Event()

        def serve() -> None:
            asyncio.set_event_loop(self.loop)
            self.runner = web.AppRunner(self.app())
            self.loop.run_until_complete(self.runner.setup())
            site = web.TCPSite(self.runner, "127.0.0.1", 0)
            self.loop.run_until_complete(site.start())
            self.port = self.runner.addresses[0][1]
            ready.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=serve, name="fake-comfyui", daemon=True)
        self.thread.start()
        assert ready.wait(10), "test server did not start"

    async def _shutdown(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for ws in list(self.state.sockets.values()):
            await ws.close()
        await self.runner.cleanup()

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def server():
    fake = FakeComfyUI()
    fake.start()
    yield fake
    fake.stop()


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = cli.main(["run", *args])
    out, err = capsys.readouterr()
    return code, out, err


def write_workflow(tmp_path: Path, workflow: dict, name: str = "workflow_api.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(workflow))
    return path


def assert_sticky(server: FakeComfyUI) -> None:
    state = server.state
    assert state.violations == []
    # Each run's first request takes the cookie; every later one, and the websocket handshake, carries it.
    assert state.requests[0][1] == "/system_stats"
    assert all(cookie in state.issued for _, path, cookie in state.requests if path != "/system_stats")
    assert state.ws_cookies and all(cookie in state.issued for cookie in state.ws_cookies)


# --- the runs ---------------------------------------------------------------------------------


def test_success_follows_the_websocket_and_downloads_outputs(server, tmp_path, capsys):
    workflow = write_workflow(tmp_path, captured_prompt("empty_save_history.json"))
    out = tmp_path / "out"
    code, stdout, stderr = run_cli(capsys, str(workflow), "--url", server.url, "--out", str(out))
    assert code == 0, stderr
    prompt_id = next(iter(server.state.prompts))
    assert (out / "probe_00004_.png").read_bytes() == server.state.outputs["probe_00004_.png"]
    # One summary line: prompt id, seconds, files.
    assert stdout.count("\n") == 1
    assert stdout.startswith(f"prompt {prompt_id} done in ")
    assert "1 file(s)" in stdout and "probe_00004_.png" in stdout
    assert "started" in stderr and "node 2 (SaveImage)" in stderr
    # Followed over the websocket: /history is read only once the prompt has ended.
    assert server.state.ws_cookies
    assert sum(path == f"/history/{prompt_id}" for _, path, _ in server.state.requests) <= 3
    assert_sticky(server)


def test_history_written_after_execution_success_is_waited_for(server, tmp_path, capsys):
    # execution_success arrives first; the entry appears only later (as on the real server).
    server.state.scenario = success_scenario(history_delay=0.6)
    workflow = write_workflow(tmp_path, captured_prompt("empty_save_history.json"))
    code, _, stderr = run_cli(capsys, str(workflow), "--url", server.url, "--out", str(tmp_path / "o"))
    assert code == 0, stderr
    polls = [path for method, path, _ in server.state.requests if path.startswith("/history/")]
    assert len(polls) >= 2
    assert (tmp_path / "o" / "probe_00004_.png").exists()


def test_slow_prompt_shows_sampling_progress(server, tmp_path, capsys):
    server.state.scenario = success_scenario(delay=0.03, progress_node="2")
    workflow = write_workflow(tmp_path, captured_prompt("empty_save_history.json"))
    code, _, stderr = run_cli(capsys, str(workflow), "--url", server.url, "--out", str(tmp_path / "o"))
    assert code == 0, stderr
    assert "node 2" in stderr and "5/5" in stderr  # tqdm bar of the sampling steps; previews ignored
    assert_sticky(server)


def test_sdxl_example_workflow_randomizes_seeds_and_applies_sets(server, tmp_path, capsys):
    original = json.loads(SDXL_WORKFLOW.read_text())
    code, _, stderr = run_cli(
        capsys, str(SDXL_WORKFLOW), "--url", server.url, "--out", str(tmp_path / "o"), "--set", "6.text=a red fox"
    )
    assert code == 0, stderr
    sent = next(iter(server.state.prompts.values()))
    assert sent["6"]["inputs"]["text"] == "a red fox"
    assert sent["10"]["inputs"]["noise_seed"] != original["10"]["inputs"]["noise_seed"]
    assert sent["4"] == original["4"]
    code, _, stderr = run_cli(
        capsys, str(SDXL_WORKFLOW), "--url", server.url, "--out", str(tmp_path / "o"), "--no-randomize-seed"
    )
    assert code == 0, stderr
    sent = list(server.state.prompts.values())[1]
    assert sent["10"]["inputs"]["noise_seed"] == original["10"]["inputs"]["noise_seed"]
    assert_sticky(server)


def test_input_image_is_uploaded_when_missing_and_not_again(server, tmp_path, capsys):
    server.state.scenario = load_image_scenario()
    workflow = write_workflow(tmp_path, captured_prompt("load_save_history.json"))
    image = tmp_path / "images" / "probe_upload.png"
    image.parent.mkdir()
    image.write_bytes(b"\x89PNG\r\n\x1a\nlocal-image")
    args = (str(workflow), "--url", server.url, "--out", str(tmp_path / "o"), "--input", str(image))
    code, _, stderr = run_cli(capsys, *args)
    assert code == 0, stderr
    assert server.state.inputs["probe_upload.png"] == image.read_bytes()
    assert (tmp_path / "o" / "probe_loaded_00003_.png").exists()
    code, _, stderr = run_cli(capsys, *args)
    assert code == 0, stderr
    assert server.state.uploads == 1
    assert "already on the server (same content)" in stderr
    assert_sticky(server)


def test_single_input_is_wired_to_the_only_loadimage_node(server, tmp_path, capsys):
    server.state.scenario = load_image_scenario()
    workflow = write_workflow(tmp_path, captured_prompt("load_save_history.json"))
    image = tmp_path / "photo.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\nphoto")
    code, _, stderr = run_cli(
        capsys, str(workflow), "--url", server.url, "--out", str(tmp_path / "o"), "--input", str(image)
    )
    assert code == 0, stderr
    assert next(iter(server.state.prompts.values()))["10"]["inputs"]["image"] == "photo.png"


def test_missing_input_without_local_file_is_one_line(server, tmp_path, capsys):
    workflow = write_workflow(tmp_path, captured_prompt("load_save_history.json"))
    code, _, stderr = run_cli(capsys, str(workflow), "--url", server.url)
    assert code == 2
    assert stderr.strip().splitlines()[-1] == (
        "comfyctl: error: node 10 (LoadImage) loads 'probe_upload.png': not on the server and no local file; "
        "pass --input PATH"
    )
    assert server.state.prompts == {}


def test_runtime_failure_reports_the_execution_error(server, tmp_path, capsys):
    server.state.scenario = failing_scenario()
    server.state.inputs["corrupt.png"] = b"not a png"
    workflow = write_workflow(tmp_path, captured_prompt("error_history.json"))
    code, stdout, stderr = run_cli(capsys, str(workflow), "--url", server.url, "--out", str(tmp_path / "o"))
    assert code == 1
    prompt_id = next(iter(server.state.prompts))
    assert stderr.strip().splitlines()[-1] == (
        f"comfyctl: error: prompt {prompt_id} failed in node 1 (LoadImage): PIL.UnidentifiedImageError: "
        "cannot identify image file '/app/ComfyUI/input/corrupt.png'"
    )
    assert stdout == ""
    assert not (tmp_path / "o").exists()


def test_runtime_failure_is_found_by_polling_too(server, tmp_path, capsys):
    server.state.scenario = failing_scenario()
    server.state.websocket = False
    server.state.inputs["corrupt.png"] = b"not a png"
    workflow = write_workflow(tmp_path, captured_prompt("error_history.json"))
    code, _, stderr = run_cli(capsys, str(workflow), "--url", server.url)
    assert code == 1
    assert "failed in node 1 (LoadImage): PIL.UnidentifiedImageError" in stderr


@pytest.mark.parametrize(
    ("workflow_change", "reject_with", "expected"),
    [
        (
            None,
            "bad_input_prompt_resp.json",
            "prompt rejected: Prompt outputs failed validation; node 10 (LoadImage): "
            "image - Invalid image file: missing.png",
        ),
        (
            {"1": {"class_type": "NoSuchNode", "inputs": {}}},
            None,
            "prompt rejected: Cannot execute because node NoSuchNode does not exist. (Node ID '#1')",
        ),
        ({"2": {"class_type": "EmptyImage", "inputs": {}}}, None, "prompt rejected: Prompt has no outputs"),
    ],
)
def test_rejected_prompt_shows_the_node_errors(server, tmp_path, capsys, workflow_change, reject_with, expected):
    server.state.scenario = success_scenario(reject_with=reject_with)
    workflow = captured_prompt("empty_save_history.json") | (workflow_change or {})
    code, _, stderr = run_cli(capsys, str(write_workflow(tmp_path, workflow)), "--url", server.url)
    assert code == 1
    assert stderr.strip().splitlines()[-1] == f"comfyctl: error: {expected}"
    assert server.state.prompts == {}


def test_timeout_is_a_clear_error_and_dequeues(server, tmp_path, capsys):
    server.state.scenario = success_scenario(stop_after="execution_start")
    workflow = write_workflow(tmp_path, captured_prompt("empty_save_history.json"))
    code, _, stderr = run_cli(capsys, str(workflow), "--url", server.url, "--timeout", "1.5")
    assert code == 1
    prompt_id = next(iter(server.state.prompts))
    assert stderr.strip().splitlines()[-1].startswith(f"comfyctl: error: prompt {prompt_id} did not finish within 1.5s")
    assert server.state.deleted == [prompt_id]


def test_timeout_while_polling(server, tmp_path, capsys):
    server.state.scenario = success_scenario(stop_after="execution_start")
    server.state.websocket = False
    workflow = write_workflow(tmp_path, captured_prompt("empty_save_history.json"))
    code, _, stderr = run_cli(capsys, str(workflow), "--url", server.url, "--timeout", "1")
    assert code == 1
    assert "did not finish within 1s" in stderr


def test_websocket_unavailable_falls_back_to_polling(server, tmp_path, capsys):
    server.state.websocket = False
    workflow = write_workflow(tmp_path, captured_prompt("empty_save_history.json"))
    code, _, stderr = run_cli(capsys, str(workflow), "--url", server.url, "--out", str(tmp_path / "o"))
    assert code == 0, stderr
    assert "websocket unavailable" in stderr and "polling /history" in stderr
    assert (tmp_path / "o" / "probe_00004_.png").exists()
    assert_sticky(server)


def test_token_and_cookie_reach_http_and_websocket(server, tmp_path, capsys):
    server.state.token = "s3cret"
    server.state.required_cookie = ("AWSELBAuthSessionCookie-0", "session-value")
    workflow = write_workflow(tmp_path, captured_prompt("empty_save_history.json"))
    base = (str(workflow), "--url", server.url, "--out", str(tmp_path / "o"))
    code, _, stderr = run_cli(capsys, *base, "--token", "s3cret", "--cookie", "AWSELBAuthSessionCookie-0=session-value")
    assert code == 0, stderr
    assert server.state.ws_cookies  # the handshake passed the token and cookie checks
    code, _, stderr = run_cli(capsys, *base, "--cookie", "AWSELBAuthSessionCookie-0=session-value")
    assert code == 1
    assert "HTTP 401" in stderr and "--token" in stderr


def test_stickiness_is_enforced_by_the_test_server(server):
    # Guards the guard: a client that drops the cookie is caught.
    import requests

    requests.get(f"{server.url}/system_stats", timeout=5)
    assert requests.get(f"{server.url}/queue", timeout=5).status_code == 503
    assert server.state.violations == ["GET /queue without the stickiness cookie"]


# --- usage errors -----------------------------------------------------------------------------


def test_usage_errors_are_one_line(tmp_path, capsys):
    ui = write_workflow(tmp_path, {"nodes": [], "links": []}, "ui.json")
    api = write_workflow(tmp_path, captured_prompt("empty_save_history.json"))
    cases = [
        ((str(ui), "--url", "http://127.0.0.1:9"), "this is a UI workflow"),
        ((str(api),), "--url is required"),
        ((str(api), "--url", "ftp://x"), "expected http(s)://host"),
        ((str(api), "--url", "http://127.0.0.1:9", "--set", "99.seed=1"), "no node '99'"),
        ((str(api), "--url", "http://127.0.0.1:9", "--set", "1.nope=1"), "node 1 has no input 'nope'"),
        ((str(tmp_path / "missing.json"), "--url", "http://127.0.0.1:9"), "cannot read workflow"),
    ]
    for args, expected in cases:
        code, _, stderr = run_cli(capsys, *args)
        assert code == 2, args
        assert len(stderr.strip().splitlines()) == 1 and expected in stderr, stderr


def test_unreachable_server_is_one_line(tmp_path, capsys):
    api = write_workflow(tmp_path, captured_prompt("empty_save_history.json"))
    code, _, stderr = run_cli(capsys, str(api), "--url", "http://127.0.0.1:9")
    assert code == 1
    assert stderr.startswith("comfyctl: error: cannot reach http://127.0.0.1:9") and stderr.count("\n") == 1


def test_output_digest_helper_matches_file(server, tmp_path):
    # input_digest is how "already on the server" is decided: the server's bytes, hashed.
    from image.comfyctl.client import ComfyClient, Progress

    server.state.inputs["a.png"] = b"abc"
    client = ComfyClient(server.url, progress=Progress(quiet=True))
    client.system_stats()
    assert client.input_digest("a.png") == hashlib.sha256(b"abc").hexdigest()
    assert client.input_digest("b.png") is None
