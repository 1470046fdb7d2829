// Cross-check: the published @moq/qmux 0.3.3 client session (what @moq/net 0.3.4 runs over
// WebSocket) against our C server session (peer.c), for each wire format. The WebSocket is
// replaced by two pipes carrying length-prefixed messages, so this runs offline in seconds.
// Run by tests/interop/test_qmux_crosscheck.sh (ctest interop_test_qmux_crosscheck).
//
// Usage: node crosscheck.mjs <path-to-qmux-peer>
import assert from "node:assert/strict";
import { spawn } from "node:child_process";

// session.js uses Promise.withResolvers (Node 22+).
if (!Promise.withResolvers) {
	Promise.withResolvers = () => {
		let resolve;
		let reject;
		const promise = new Promise((res, rej) => {
			resolve = res;
			reject = rej;
		});
		return { promise, resolve, reject };
	};
}

const { default: Session, StreamError } = await import("@moq/qmux");

const peerPath = process.argv[2];
if (!peerPath) throw new Error("usage: node crosscheck.mjs <qmux-peer>");

const enc = (s) => new TextEncoder().encode(s);
const dec = (b) => new TextDecoder().decode(b);

// A WebSocketStream look-alike over the peer's stdin/stdout.
function pipeSocket(child, protocol) {
	let ctrl;
	const readable = new ReadableStream({
		start(c) {
			ctrl = c;
		},
	});
	let buf = Buffer.alloc(0);
	let done = false;
	let resolveClosed;
	const closed = new Promise((r) => {
		resolveClosed = r;
	});
	const finish = (closeCode, reason) => {
		if (done) return;
		done = true;
		try {
			ctrl.close();
		} catch {}
		resolveClosed({ closeCode, reason });
	};
	// Like a real WebSocket, every message is its own event-loop task and the close event
	// comes after them, so the session reads a final APPLICATION_CLOSE before `closed`.
	const events = [];
	let pumping = false;
	const pump = () => {
		const ev = events.shift();
		if (!ev) {
			pumping = false;
			return;
		}
		ev();
		setImmediate(pump);
	};
	const post = (ev) => {
		events.push(ev);
		if (!pumping) {
			pumping = true;
			setImmediate(pump);
		}
	};
	child.stdout.on("data", (d) => {
		buf = Buffer.concat([buf, d]);
		while (buf.length >= 4) {
			const len = buf.readUInt32BE(0);
			const body = len & 0x7fffffff;
			if (buf.length < 4 + body) break;
			const msg = new Uint8Array(buf.subarray(4, 4 + body));
			buf = buf.subarray(4 + body);
			if (len & 0x80000000) {
				const m = Buffer.from(msg);
				post(() => finish(m.readUInt16BE(0), m.subarray(2).toString()));
			} else {
				post(() => {
					if (!done) ctrl.enqueue(msg);
				});
			}
		}
	});
	child.stdout.on("end", () => post(() => finish(1006, "")));
	// Like a WebSocket whose peer has gone, writes after the peer exited are dropped (the
	// session answers a server close with a close of its own, which may find the pipe shut).
	child.stdin.on("error", (e) => {
		if (e.code !== "EPIPE") throw e;
	});
	const send = (b) => {
		if (!child.stdin.destroyed) child.stdin.write(b);
	};
	const writable = new WritableStream(
		{
			write(chunk) {
				const hdr = Buffer.alloc(4);
				hdr.writeUInt32BE(chunk.byteLength);
				send(Buffer.concat([hdr, Buffer.from(chunk)]));
			},
		},
		new ByteLengthQueuingStrategy({ highWaterMark: 64 * 1024 }),
	);
	return {
		opened: Promise.resolve({ readable, writable, protocol, extensions: "" }),
		closed,
		close(info) {
			const code = info?.closeCode ?? 1000;
			const reason = Buffer.from(info?.reason ?? "");
			const hdr = Buffer.alloc(6);
			hdr.writeUInt32BE((0x80000000 | (2 + reason.length)) >>> 0);
			hdr.writeUInt16BE(code, 4);
			send(Buffer.concat([hdr, reason]));
			child.stdin.end();
			finish(code, info?.reason ?? "");
		},
	};
}

async function readAll(readable) {
	const reader = readable.getReader();
	const parts = [];
	let n = 0;
	for (;;) {
		const { value, done } = await reader.read();
		if (done) break;
		parts.push(value);
		n += value.byteLength;
	}
	const out = new Uint8Array(n);
	let o = 0;
	for (const p of parts) {
		out.set(p, o);
		o += p.byteLength;
	}
	return out;
}

function startPeer(protocol) {
	const child = spawn(peerPath, [protocol], { stdio: ["pipe", "pipe", "pipe"] });
	const lines = [];
	let err = "";
	child.stderr.on("data", (d) => {
		err += d.toString();
		const parts = err.split("\n");
		err = parts.pop();
		lines.push(...parts);
		if (process.env.DEBUG) for (const l of parts) console.error(`peer: ${l}`);
	});
	const exited = new Promise((r) => child.on("exit", (code) => r(code)));
	const session = new Session(pipeSocket(child, protocol));
	// Every server-initiated uni stream, read to the end, as text.
	const texts = [];
	const waiters = [];
	(async () => {
		const reader = session.incomingUnidirectionalStreams.getReader();
		for (;;) {
			let r;
			try {
				r = await reader.read();
			} catch {
				return;
			}
			if (r.done) return;
			readAll(r.value).then(
				(b) => {
					texts.push(dec(b));
					for (const w of waiters.splice(0)) w();
				},
				() => {},
			);
		}
	})();
	const expectText = async (pred, what) => {
		const deadline = Date.now() + 20000;
		for (;;) {
			const i = texts.findIndex(pred);
			if (i >= 0) return texts.splice(i, 1)[0];
			if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
			await new Promise((r) => {
				waiters.push(r);
				setTimeout(r, 200);
			});
		}
	};
	// A line the peer wrote on stderr (it reports state there).
	const expectLine = async (pred, what) => {
		const deadline = Date.now() + 20000;
		while (!lines.some(pred)) {
			if (Date.now() > deadline) throw new Error(`the peer never reported ${what}: ${lines.join(" | ")}`);
			await new Promise((r) => setTimeout(r, 50));
		}
	};
	return { child, session, lines, exited, expectText, expectLine };
}

async function scenario(wire) {
	const protocol = `${wire}.moq-lite-05`;
	const peer = startPeer(protocol);
	const { session, expectText } = peer;
	await session.ready;
	assert.equal(session.protocol, "moq-lite-05");

	// The server opened a uni stream before it had our parameters; it arrives once it may.
	assert.equal(await expectText((t) => t === "hello", "hello"), "hello");

	// Bidi echo, exact bytes.
	{
		const bi = await session.createBidirectionalStream();
		const w = bi.writable.getWriter();
		await w.write(enc("hello qmux"));
		await w.close();
		assert.equal(dec(await readAll(bi.readable)), "hello qmux");
	}

	// 3 MiB each way on one bidi stream: both sides' flow control keeps granting credit.
	{
		const size = 3 << 20;
		const data = new Uint8Array(size);
		for (let i = 0; i < size; i++) data[i] = (i * 31 + 7) & 0xff;
		const bi = await session.createBidirectionalStream();
		const w = bi.writable.getWriter();
		const writing = (async () => {
			for (let o = 0; o < size; o += 100000) await w.write(data.subarray(o, o + 100000));
			await w.close();
		})();
		const back = await readAll(bi.readable);
		await writing;
		assert.equal(back.byteLength, size);
		assert.ok(Buffer.from(back).equals(Buffer.from(data)), "3 MiB echo differs");
	}

	// 300 uni streams: beyond our 256-stream limit and the client's 100, so MAX_STREAMS has to
	// flow both ways; every one is answered on a server uni stream.
	{
		const n = 300;
		for (let i = 0; i < n; i++) {
			const u = await session.createUnidirectionalStream();
			const w = u.getWriter();
			await w.write(enc(`n${i}`));
			await w.close();
		}
		for (let i = 0; i < n; i++) await expectText((t) => t === `echo:n${i}`, `echo:n${i}`);
	}

	// RESET_STREAM with a code: the server sees it.
	{
		const u = await session.createUnidirectionalStream();
		const w = u.getWriter();
		await w.write(enc("partial"));
		await w.abort(new StreamError(13));
		await expectText((t) => t === "reset:13", "reset:13");
	}

	// STOP_SENDING with a code: the server stops and says so.
	{
		const bi = await session.createBidirectionalStream();
		const w = bi.writable.getWriter();
		await w.write(enc("first"));
		const r = bi.readable.getReader();
		const first = await r.read();
		assert.equal(dec(first.value), "first");
		await r.cancel(new StreamError(7));
		await expectText((t) => t === "stopped:7", "stopped:7");
		await w.write(enc("more")).catch(() => {});
	}

	// Datagrams on the record wires.
	if (wire !== "qmux-00") {
		assert.ok(session.datagrams.maxDatagramSize > 1000);
		const dr = session.datagrams.readable.getReader();
		const dw = session.datagrams.writable.getWriter();
		await dw.write(enc("dgram"));
		const got = await Promise.race([
			dr.read(),
			new Promise((_, rej) => setTimeout(() => rej(new Error("no datagram echo")), 5000)),
		]);
		assert.equal(dec(got.value), "dgram");
		dr.releaseLock();
	} else {
		assert.equal(session.datagrams.maxDatagramSize, 0);
	}

	// Our QX_PING (every second) measures a round trip on the record wires: the peer says so.
	if (wire !== "qmux-00") await peer.expectLine((l) => l.startsWith("measured rtt "), "an RTT");

	// A graceful close from the client: the server gets the code and reason.
	session.close({ closeCode: 42, reason: "bye" });
	const code = await peer.exited;
	assert.equal(code, 0);
	assert.ok(peer.lines.includes("closed 42 bye"), `peer said: ${peer.lines.join(" | ")}`);
	if (wire !== "qmux-00") {
		const rtt = peer.lines.find((l) => l.startsWith("rtt "));
		assert.ok(rtt && Number(rtt.slice(4)) > 0, `no RTT measured: ${peer.lines.join(" | ")}`);
	}

	// A close from the server: the client's `closed` resolves with its code and reason.
	{
		const p2 = startPeer(protocol);
		await p2.session.ready;
		const bi = await p2.session.createBidirectionalStream();
		const w = bi.writable.getWriter();
		await w.write(enc("cmd:close"));
		await w.close();
		const info = await p2.session.closed;
		assert.equal(info.closeCode, 7);
		assert.equal(info.reason, "done");
		assert.equal(await p2.exited, 0);
		assert.ok(p2.lines.includes("closed 7 done"), p2.lines.join(" | "));
	}
	console.log(`ok ${wire}`);
}

const timer = setTimeout(() => {
	console.error("crosscheck timed out");
	process.exit(1);
}, 120000);
for (const wire of ["qmux-02", "qmux-01", "qmux-00"]) await scenario(wire);
clearTimeout(timer);
console.log("crosscheck passed");
