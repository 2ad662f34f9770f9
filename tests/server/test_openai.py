"""`toy serve` driven by the official `openai` Python client (and plain HTTP where the
client has no call): models, chat and completions, streaming, stop sequences, limits,
seeds, logprobs, errors, disconnect cancellation, concurrency and SIGTERM.

Serves stories260K.gguf (a real TinyStories model with a SentencePiece vocabulary and no
chat template: chats go through ChatML, as `toy chat` does)."""
import concurrent.futures
import http.client
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request

import openai

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from toy_server import ToyServer, fixture, toy_binary  # noqa: E402

MODEL = fixture("models/stories260K.gguf")
KEY = "test-key-0123456789"
EOS = 2  # stories260K's end of text; biased away where a long generation is needed


def http_json(url, method="GET", body=None, key=KEY, raw=None):
    """(status, parsed JSON or text) of one request."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if key:
        req.add_header("Authorization", "Bearer " + key)
    try:
        with urllib.request.urlopen(req, timeout=30) as res:
            status, text = res.status, res.read().decode()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read().decode()
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


def metric(url, name):
    status, text = http_json(url + "/metrics")
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics:\n{text}")


class OpenAIClientTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = ToyServer(MODEL, "--parallel", "4", "-c", "4096", "--api-key", KEY,
                               "--max-body", "65536", "-t", "2")
        cls.server.start()
        cls.client = openai.OpenAI(base_url=cls.server.url + "/v1", api_key=KEY, max_retries=0,
                                   timeout=60)

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def chat(self, content, **kw):
        return self.client.chat.completions.create(
            model="stories260K", messages=[{"role": "user", "content": content}], **kw)

    def test_models(self):
        models = self.client.models.list()
        self.assertEqual([m.id for m in models.data], ["stories260K"])
        self.assertEqual(self.client.models.retrieve("stories260K").id, "stories260K")

    def test_chat(self):
        r = self.chat("Tell me a story.", max_tokens=24, temperature=0)
        self.assertEqual(r.object, "chat.completion")
        self.assertTrue(r.id.startswith("chatcmpl-"))
        self.assertEqual(r.choices[0].message.role, "assistant")
        self.assertIsInstance(r.choices[0].message.content, str)
        self.assertGreater(len(r.choices[0].message.content), 0)
        self.assertIn(r.choices[0].finish_reason, ("stop", "length"))
        self.assertGreater(r.usage.prompt_tokens, 5)
        self.assertEqual(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens)

    def test_chat_streaming_equals_non_streaming(self):
        whole = self.chat("Once upon a time", max_tokens=30, temperature=0)
        stream = self.chat("Once upon a time", max_tokens=30, temperature=0, stream=True,
                           stream_options={"include_usage": True})
        chunks = list(stream)  # the client stops at data: [DONE]
        self.assertEqual(chunks[0].choices[0].delta.role, "assistant")
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        self.assertEqual(text, whole.choices[0].message.content)
        finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
        self.assertEqual(finishes[-1], whole.choices[0].finish_reason)
        self.assertTrue(all(f is None for f in finishes[:-1]))
        self.assertEqual(chunks[-1].choices, [])
        self.assertEqual(chunks[-1].usage.completion_tokens, whole.usage.completion_tokens)
        self.assertEqual(chunks[-1].usage.prompt_tokens, whole.usage.prompt_tokens)
        self.assertTrue(all(c.usage is None for c in chunks[:-1]))

    def test_stream_ends_with_done(self):
        conn = http.client.HTTPConnection(self.server.url.split("//")[1], timeout=30)
        conn.request("POST", "/v1/completions",
                     json.dumps({"prompt": "Once", "max_tokens": 5, "stream": True}),
                     {"Authorization": "Bearer " + KEY, "Content-Type": "application/json"})
        res = conn.getresponse()
        self.assertEqual(res.status, 200)
        self.assertTrue(res.getheader("Content-Type").startswith("text/event-stream"))
        events = [e for e in res.read().decode().split("\n\n") if e]
        conn.close()
        self.assertEqual(events[-1], "data: [DONE]")
        for e in events[:-1]:
            self.assertEqual(json.loads(e[len("data: "):])["object"], "text_completion")

    def test_completion_greedy_matches_llama_cpp(self):
        r = self.client.completions.create(model="stories260K", prompt="Once upon a time",
                                           max_tokens=20, temperature=0)
        self.assertEqual(r.object, "text_completion")
        # llama.cpp's greedy continuation of this prompt (fixtures/README.md).
        self.assertTrue(r.choices[0].text.startswith(", there was a little girl named Lily."),
                        r.choices[0].text)
        self.assertEqual(r.usage.completion_tokens, 20)
        self.assertEqual(r.choices[0].finish_reason, "length")

    def test_completion_token_prompt(self):
        ids = http_json(self.server.url + "/tokenize",
                        "POST", {"content": "Once upon a time", "add_special": True})[1]["tokens"]
        a = self.client.completions.create(model="stories260K", prompt=ids, max_tokens=8,
                                           temperature=0)
        b = self.client.completions.create(model="stories260K", prompt="Once upon a time",
                                           max_tokens=8, temperature=0)
        self.assertEqual(a.choices[0].text, b.choices[0].text)

    def test_stop_sequence(self):
        r = self.client.completions.create(model="stories260K", prompt="Once upon a time",
                                           max_tokens=40, temperature=0, stop=["Lily", "zzz"])
        self.assertEqual(r.choices[0].text, ", there was a little girl named ")
        self.assertEqual(r.choices[0].finish_reason, "stop")
        s = self.client.completions.create(model="stories260K", prompt="Once upon a time",
                                           max_tokens=40, temperature=0, stop="Lily",
                                           stream=True)
        chunks = list(s)
        self.assertEqual("".join(c.choices[0].text for c in chunks),
                         ", there was a little girl named ")
        self.assertEqual(chunks[-1].choices[0].finish_reason, "stop")

    def test_max_tokens_one(self):
        r = self.chat("Hello", max_tokens=1, logit_bias={str(EOS): -100})
        self.assertEqual(r.usage.completion_tokens, 1)
        self.assertEqual(r.choices[0].finish_reason, "length")
        r = self.chat("Hello", max_completion_tokens=1, logit_bias={str(EOS): -100})
        self.assertEqual(r.usage.completion_tokens, 1)

    def test_seeded_sampling_is_reproducible(self):
        kw = dict(max_tokens=40, temperature=1.0, top_p=0.95, seed=1234)
        a = self.chat("Once upon a time", **kw).choices[0].message.content
        b = self.chat("Once upon a time", **kw).choices[0].message.content
        self.assertEqual(a, b)
        texts = {self.chat("Once upon a time", max_tokens=40, temperature=1.0,
                           seed=s).choices[0].message.content for s in range(4)}
        self.assertGreater(len(texts), 1)  # the seed matters

    def test_penalties_are_accepted(self):
        r = self.chat("Once upon a time", max_tokens=30, temperature=0, presence_penalty=1.5,
                      frequency_penalty=1.0)
        self.assertEqual(r.object, "chat.completion")

    def test_logprobs(self):
        r = self.chat("Once upon a time", max_tokens=6, temperature=0, logprobs=True,
                      top_logprobs=3, logit_bias={str(EOS): -100})
        content = r.choices[0].logprobs.content
        self.assertEqual(len(content), 6)
        for t in content:
            self.assertEqual(len(t.top_logprobs), 3)
            self.assertLessEqual(t.logprob, 0.0)
            # Greedy: the chosen token is the most likely one.
            self.assertEqual(t.token, t.top_logprobs[0].token)
            self.assertAlmostEqual(t.logprob, t.top_logprobs[0].logprob, places=4)
        c = self.client.completions.create(model="stories260K", prompt="Once upon a time",
                                           max_tokens=4, temperature=0, logprobs=2)
        self.assertEqual(len(c.choices[0].logprobs.tokens), 4)
        self.assertEqual(len(c.choices[0].logprobs.top_logprobs[0]), 2)

    def test_bad_key(self):
        bad = openai.OpenAI(base_url=self.server.url + "/v1", api_key="wrong", max_retries=0)
        with self.assertRaises(openai.AuthenticationError) as e:
            bad.models.list()
        self.assertEqual(e.exception.status_code, 401)
        with self.assertRaises(openai.AuthenticationError):
            bad.chat.completions.create(model="stories260K",
                                        messages=[{"role": "user", "content": "hi"}])
        status, body = http_json(self.server.url + "/v1/models", key=None)
        self.assertEqual(status, 401)
        self.assertIn("missing API key", body["error"]["message"])
        # The page and the health check need no key.
        self.assertEqual(http_json(self.server.url + "/health", key=None)[0], 200)

    def test_invalid_requests(self):
        cases = [
            dict(messages=[{"role": "user", "content": "hi"}], temperature=5),
            dict(messages=[{"role": "user", "content": "hi"}], n=2),
            dict(messages=[]),
            dict(messages=[{"role": "wizard", "content": "hi"}]),
            dict(messages=[{"role": "user", "content": "hi"}], max_tokens=0),
            dict(messages=[{"role": "user", "content": "hi"}], stop=["a", "b", "c", "d", "e"]),
            dict(messages=[{"role": "user", "content": "hi"}], top_logprobs=30, logprobs=True),
        ]
        for kw in cases:
            with self.subTest(kw=kw):
                with self.assertRaises(openai.BadRequestError) as e:
                    self.client.chat.completions.create(model="stories260K", **kw)
                self.assertEqual(e.exception.status_code, 400)
                self.assertEqual(e.exception.body["type"], "invalid_request_error")
        for raw in [b"{not json", b"[1, 2]", b"\xff\xfe", b""]:
            with self.subTest(raw=raw):
                status, body = http_json(self.server.url + "/v1/chat/completions", "POST",
                                         raw=raw)
                self.assertEqual(status, 400)
                self.assertIn("message", body["error"])

    def test_unknown_model(self):
        with self.assertRaises(openai.NotFoundError) as e:
            self.client.chat.completions.create(model="gpt-9",
                                                messages=[{"role": "user", "content": "hi"}])
        self.assertEqual(e.exception.status_code, 404)
        self.assertEqual(e.exception.body["code"], "model_not_found")
        with self.assertRaises(openai.NotFoundError):
            self.client.models.retrieve("gpt-9")
        self.assertEqual(http_json(self.server.url + "/v1/nothing-here")[0], 404)

    def test_body_too_large(self):
        with self.assertRaises(openai.APIStatusError) as e:
            self.chat("x " * 40000)  # 80 kB > --max-body 64 KiB
        self.assertEqual(e.exception.status_code, 413)

    def test_form_encoded_json_body_over_8_kib(self):
        # curl -d sends application/x-www-form-urlencoded unless told otherwise; the body is
        # still JSON, and only --max-body limits it.
        body = json.dumps({"prompt": "Once upon a time", "max_tokens": 1}) + " " * 20000
        req = urllib.request.Request(self.server.url + "/v1/completions", data=body.encode(),
                                     method="POST")
        req.add_header("Content-Type", "application/x-www-form-urlencoded")
        req.add_header("Authorization", "Bearer " + KEY)
        with urllib.request.urlopen(req, timeout=30) as res:
            self.assertEqual(res.status, 200)
            self.assertEqual(json.loads(res.read())["usage"]["completion_tokens"], 1)

    def test_multipart_body_is_refused(self):
        req = urllib.request.Request(self.server.url + "/v1/completions", method="POST",
                                     data=b"--b\r\nContent-Disposition: form-data; name=\"a\""
                                          b"\r\n\r\n1\r\n--b--\r\n")
        req.add_header("Content-Type", "multipart/form-data; boundary=b")
        req.add_header("Authorization", "Bearer " + KEY)
        with self.assertRaises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req, timeout=30)
        self.assertEqual(e.exception.code, 400)
        self.assertIn("JSON", json.loads(e.exception.read())["error"]["message"])

    def test_wrong_method_is_405_with_allow(self):
        req = urllib.request.Request(self.server.url + "/v1/chat/completions", method="GET")
        with self.assertRaises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req, timeout=30)
        self.assertEqual(e.exception.code, 405)
        self.assertIn("POST", e.exception.headers["Allow"])
        self.assertEqual(json.loads(e.exception.read())["error"]["code"], None)
        status, body = http_json(self.server.url + "/v1/models", "POST", {})
        self.assertEqual(status, 405)
        self.assertIn("GET", body["error"]["message"])

    def test_prompt_longer_than_context(self):
        with self.assertRaises(openai.BadRequestError) as e:
            self.client.completions.create(model="stories260K", prompt=[5] * 5000, max_tokens=4)
        message = e.exception.body["message"]
        self.assertIn("5000 tokens", message)
        self.assertIn("4096", message)

    def test_tokenize_detokenize_health_metrics(self):
        status, body = http_json(self.server.url + "/tokenize", "POST",
                                 {"content": "Once upon a time", "with_pieces": True})
        self.assertEqual(status, 200)
        ids = [t["id"] for t in body["tokens"]]
        self.assertGreater(len(ids), 2)
        status, body = http_json(self.server.url + "/detokenize", "POST", {"tokens": ids})
        self.assertEqual(body["content"].strip(), "Once upon a time")
        self.assertEqual(http_json(self.server.url + "/detokenize", "POST",
                                   {"tokens": [99999]})[0], 400)
        self.assertEqual(http_json(self.server.url + "/health")[1], {"status": "ok"})
        self.assertGreater(metric(self.server.url, "toy_requests_total"), 0)
        self.assertEqual(metric(self.server.url, "toy_slots"), 4)

    def test_disconnect_cancels_generation(self):
        cancelled = metric(self.server.url, "toy_completions_cancelled_total")
        log_start = len(self.server.log_text())
        before = metric(self.server.url, "toy_tokens_predicted_total")
        host, port = self.server.url.split("//")[1].split(":")
        body = json.dumps({"prompt": "Once upon a time", "max_tokens": 4000, "stream": True,
                           "temperature": 0, "logit_bias": {str(EOS): -100}})
        sock = socket.create_connection((host, int(port)))
        sock.sendall((f"POST /v1/completions HTTP/1.1\r\nHost: {host}\r\n"
                      f"Authorization: Bearer {KEY}\r\nContent-Type: application/json\r\n"
                      f"Content-Length: {len(body)}\r\n\r\n{body}").encode())
        received = sock.recv(4096)
        self.assertIn(b"200", received)
        while b"data: " not in received:  # at least one token streamed before leaving
            chunk = sock.recv(4096)
            self.assertTrue(chunk, "the stream ended early")
            received += chunk
        sock.close()
        deadline = time.monotonic() + 20
        while metric(self.server.url, "toy_completions_cancelled_total") == cancelled:
            self.assertLess(time.monotonic(), deadline, "the generation was not cancelled")
            time.sleep(0.02)
        generated = metric(self.server.url, "toy_tokens_predicted_total") - before
        self.assertLess(generated, 4000)
        # The access log line counts the tokens generated before the client left.
        pattern = re.compile(r"POST /v1/completions 200 \d+\+([1-9]\d*) tokens ")
        while not pattern.search(self.server.log_text()[log_start:]):
            self.assertLess(time.monotonic(), deadline + 10, self.server.log_text()[-2000:])
            time.sleep(0.02)

    def test_concurrent_requests(self):
        def one(i):
            stream = self.chat(f"Story number {i}", max_tokens=20, temperature=0.7, seed=i,
                               stream=True)
            return "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            texts = list(pool.map(one, range(16)))
        self.assertEqual(len(texts), 16)
        self.assertTrue(all(isinstance(t, str) and t for t in texts))


def smollm2_path():
    """SmolLM2-135M-Instruct as scripts/fetch-smollm2.sh fetched it (TOY_SMOLLM2), if it did."""
    path = os.environ.get("TOY_SMOLLM2", "")
    return path if path and os.path.exists(path) else None


@unittest.skipUnless(smollm2_path(), "TOY_SMOLLM2 not set (scripts/fetch-smollm2.sh could not fetch it)")
class RealChatModelTest(unittest.TestCase):
    """A real instruction-tuned model with its own ChatML template."""

    def test_answers_a_question(self):
        with ToyServer(smollm2_path(), "--parallel", "2", "-c", "1024") as server:
            client = openai.OpenAI(base_url=server.url + "/v1", api_key="none", max_retries=0)
            r = client.chat.completions.create(
                model="SmolLM2-135M-Instruct.Q4_1", temperature=0, max_tokens=24,
                messages=[{"role": "user", "content": "What is the capital of France?"}])
            self.assertIn("Paris", r.choices[0].message.content)
            self.assertEqual(r.choices[0].finish_reason, "stop")  # <|im_end|> ends the turn
            stream = client.chat.completions.create(
                model="SmolLM2-135M-Instruct.Q4_1", temperature=0, max_tokens=24, stream=True,
                messages=[{"role": "user", "content": "What is the capital of France?"}])
            text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
            self.assertEqual(text, r.choices[0].message.content)


class LoraTest(unittest.TestCase):
    """--lora: the server applies the adapter as `toy generate --lora` does."""

    def test_adapter_is_applied_and_announced(self):
        with tempfile.TemporaryDirectory() as tmp:
            data, adapter = os.path.join(tmp, "data.txt"), os.path.join(tmp, "adapter.gguf")
            with open(fixture("text/tinyshakespeare.txt"), encoding="utf-8") as f:
                text = f.read(20000)
            with open(data, "w", encoding="utf-8") as f:
                f.write(text)
            subprocess.run([toy_binary(), "finetune", "-m", MODEL, "--data", data, "-o", adapter,
                            "--lora-targets", "all-linear", "-r", "4", "--steps", "8",
                            "--lr", "1e-2", "-c", "64", "--batch", "2", "-q", "-t", "2"],
                           check=True, capture_output=True)
            generated = subprocess.run(
                [toy_binary(), "generate", "-m", MODEL, "--lora", adapter, "-p",
                 "Once upon a time", "-n", "12", "--temp", "0", "-t", "2"],
                check=True, capture_output=True, text=True).stdout
            base = subprocess.run(
                [toy_binary(), "generate", "-m", MODEL, "-p", "Once upon a time", "-n", "12",
                 "--temp", "0", "-t", "2"], check=True, capture_output=True, text=True).stdout
            self.assertNotEqual(generated, base)  # the adapter changes the greedy text
            with ToyServer(MODEL, "--lora", adapter, "--parallel", "1") as server:
                self.assertIn(f"LoRA adapter {adapter}", server.log_text())
                client = openai.OpenAI(base_url=server.url + "/v1", api_key="none",
                                       max_retries=0)
                r = client.completions.create(model="stories260K", prompt="Once upon a time",
                                              max_tokens=12, temperature=0)
            self.assertEqual("Once upon a time" + r.choices[0].text + "\n", generated)


class ShutdownTest(unittest.TestCase):
    def test_sigterm_finishes_the_stream_and_exits_0(self):
        with ToyServer(MODEL, "--parallel", "2", "-c", "4096", "--shutdown-timeout",
                       "120") as server:
            client = openai.OpenAI(base_url=server.url + "/v1", api_key="none", max_retries=0)
            stream = client.completions.create(
                model="stories260K", prompt="Once upon a time", max_tokens=2000, stream=True,
                temperature=0, logit_bias={str(EOS): -100})
            chunks = [next(stream)]
            waiter = threading.Thread(target=lambda: setattr(self, "code", server.terminate()))
            waiter.start()
            chunks += list(stream)
            waiter.join()
            self.assertEqual(self.code, 0, server.log_text())
            self.assertEqual(chunks[-1].choices[0].finish_reason, "length")
            text = "".join(c.choices[0].text for c in chunks)
            self.assertGreater(len(text), 1000)  # all 2000 tokens came
            self.assertIn("SIGTERM received", server.log_text())


if __name__ == "__main__":
    unittest.main()
