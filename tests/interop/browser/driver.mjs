// Drives headless Chromium (Debian's /usr/bin/chromium through playwright-core) against a
// running moq-relay: the page (page/index.html + the esbuild bundle) talks WebTransport to
// the relay with @moq/net and with the raw WebTransport API; a Node @moq/net subscriber
// (WebSocket) and, when built, the native `moq` tool (raw QUIC) read what the browser
// publishes. A second relay (--relay14), offering moq-transport-14 but not moq-lite-02/01,
// runs IETF draft 14 through "moql". Prints one "ok   <check>" or "FAIL <check>" line per
// check.
//
// Usage: node driver.mjs --relay http://localhost:PORT/ --relay-log FILE
//                        [--relay14 http://localhost:PORT14/ --relay14-log FILE14]
//                        --dir DIR [--moq BIN] [--only REGEX]   (run only the checks whose
//                        name matches)
//   DIR holds page/index.html, out/app.js (its bundle), example/index.html, out/example.js
//   (the bundle of docs/browser.md's example), node-subscribe.mjs and receive-selftest.mjs.
// Env: MOQ_BROWSER_NETLOG=<file> makes Chromium write its net-log there (for debugging).
import { execFile } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { parseArgs } from "node:util";
import { chromium } from "playwright-core";
import { matchGroupRun } from "./payload.js";

const { values: args } = parseArgs({
	options: {
		relay: { type: "string" },
		"relay-log": { type: "string" },
		relay14: { type: "string" },
		"relay14-log": { type: "string" },
		dir: { type: "string" },
		moq: { type: "string" },
		chromium: { type: "string", default: "/usr/bin/chromium" },
		only: { type: "string" },
	},
});
const relay = args.relay;
const dir = args.dir;

let failed = 0;
const consoleLines = [];

function report(name, ok, detail) {
	if (ok) {
		console.log(`ok   ${name}${detail ? ` (${detail})` : ""}`);
	} else {
		failed++;
		console.log(`FAIL ${name}`);
		for (const line of String(detail).split("\n").slice(0, 20)) console.log(`     ${line}`);
	}
}

// Run one check: fn returns a detail string (pass) or throws (fail).
async function check(name, fn) {
	if (args.only && !new RegExp(args.only).test(name)) return;
	try {
		report(name, true, await fn());
	} catch (err) {
		report(name, false, err?.message ?? err);
	}
}

function assert(cond, message) {
	if (!cond) throw new Error(message);
}

function relayLog(file = args["relay-log"]) {
	return fs.readFileSync(file, "utf8");
}

// How many times the relay's log (`file`, by default the main relay's) matches `re`.
function countLog(re, file) {
	return relayLog(file).match(new RegExp(re.source, "g"))?.length ?? 0;
}

// Wait until the relay's log matches `re` `count` times. The deadline only ends a wait that
// has failed: a loaded machine took over 5 s to show a new tab's announcement.
async function waitLog(re, count = 1, timeoutMs = 30000, file = undefined) {
	const deadline = Date.now() + timeoutMs;
	for (;;) {
		const n = countLog(re, file);
		if (n >= count) return n;
		if (Date.now() > deadline) throw new Error(`relay log matched ${re} ${n} times, expected at least ${count}`);
		await new Promise((r) => setTimeout(r, 100));
	}
}

// Wait until the relay lists `path` on GET /announced/. The relay's log cannot tell: when
// many broadcasts come and go it folds their "announced" lines into one count.
async function waitAnnounced(path, timeoutMs = 30000) {
	const deadline = Date.now() + timeoutMs;
	for (;;) {
		const res = await fetch(new URL("announced/", relay)).catch(() => undefined);
		const listed = res?.ok ? (await res.text()).split("\n").map((p) => p.replace(/^\//, "")) : [];
		if (listed.includes(path)) return;
		if (Date.now() > deadline) throw new Error(`GET /announced/ never listed ${path}`);
		await new Promise((r) => setTimeout(r, 100));
	}
}

// "groups 3..7" of a receive() summary, with the order of arrival when a group came after a
// newer one (allowed: a relay sends the newest waiting group first).
function groupRange(r) {
	return `groups ${r.first}..${r.last}${r.reordered ? ` (in order of arrival ${r.order.join(",")})` : ""}`;
}

function run(cmd, argv, timeoutMs, encoding = "utf8") {
	return new Promise((resolve) => {
		execFile(cmd, argv, { timeout: timeoutMs, maxBuffer: 64 << 20, encoding }, (error, stdout, stderr) =>
			resolve({ error, stdout, stderr: String(stderr) }),
		);
	});
}

// ---- the page server: the page and its bundle, from localhost ----

const files = {
	"/": ["page/index.html", "text/html"],
	"/index.html": ["page/index.html", "text/html"],
	"/app.js": ["out/app.js", "text/javascript"],
	"/example/": ["example/index.html", "text/html"],
	"/example/dist/main.js": ["out/example.js", "text/javascript"],
};
const server = http.createServer((req, res) => {
	const entry = files[new URL(req.url, "http://x").pathname];
	if (!entry) {
		res.writeHead(req.url === "/favicon.ico" ? 204 : 404);
		res.end();
		return;
	}
	res.writeHead(200, { "content-type": entry[1], "cache-control": "no-store" });
	res.end(fs.readFileSync(path.join(dir, entry[0])));
});
await new Promise((resolve) => server.listen(0, "localhost", resolve));
const pageUrl = `http://localhost:${server.address().port}/`;

// ---- Chromium ----

const flags = [
	"--headless=new",
	"--no-sandbox",
	"--disable-gpu",
	"--no-first-run",
	"--disable-background-networking",
	"--disable-component-update",
	"--disable-sync",
	// Loopback only: no host but localhost resolves, so Chromium's own background requests
	// (sign-in, updates) cannot leave the machine.
	"--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost",
];
if (process.env.MOQ_BROWSER_NETLOG) flags.push(`--log-net-log=${process.env.MOQ_BROWSER_NETLOG}`, "--net-log-capture-mode=Everything");

let browser;
try {
	// Playwright starts Chromium with a fresh temporary --user-data-dir of its own.
	browser = await chromium.launch({ executablePath: args.chromium, headless: true, args: flags, timeout: 60000 });
} catch (err) {
	report("chromium starts headless", false, err.message);
	server.close();
	process.exit(1);
}
const page = await browser.newPage();
page.on("console", (msg) => {
	if (msg.type() !== "debug") consoleLines.push(`console.${msg.type()}: ${msg.text()}`);
});
page.on("pageerror", (err) => consoleLines.push(`pageerror: ${err.message}`));
const T = (fn, ...argv) => page.evaluate(fn, argv);

await check("page loads with WebTransport", async () => {
	await page.goto(pageUrl);
	await page.waitForFunction(() => window.moqReady === true, null, { timeout: 15000 });
	assert(await T(() => window.moqTest.webTransportSupported()), "the page reports no WebTransport support");
	return `${await browser.version()}`;
});

// ---- the browser's WebTransport API against the relay's HTTP/3 server ----

await check("WebTransport session negotiates moq-lite-05", async () => {
	const s = await T(([u]) => window.moqTest.rawOpen(u, ["moq-lite-05", "moq-lite-04", "moq-lite-03"]), relay);
	assert(s.protocol === "moq-lite-05", `protocol "${s.protocol}"`);
	const info = await T(([id]) => window.moqTest.rawClose(id, 4242, "bye from chromium"), s.id);
	assert(info.closeCode === 4242, `closed with ${JSON.stringify(info)}`);
	// the relay read the CLOSE_WEBTRANSPORT_SESSION capsule
	await waitLog(/WebTransport session \d+ closed \(code 4242: bye from chromium\)/);
	return "close capsule with code 4242 reached the relay";
});

await check("a long CONNECT path survives Chromium's QPACK encoding", async () => {
	// ~1.5 kB of path and query: Chromium Huffman-codes it; the relay must decode it exactly
	const segment = "abcdefghijklmnopqrstuvwxyz0123456789-._~";
	const path = `/chromium/${Array.from({ length: 30 }, (_, i) => segment.slice(i % 10)).join("/")}`;
	const query = `?token=${"Zz09-_".repeat(40)}&n=${"1234567890".repeat(10)}`;
	const url = new URL(path + query, relay).toString();
	const s = await T(([u]) => window.moqTest.rawOpen(u, ["moq-lite-05"]), url);
	await T(([id]) => window.moqTest.rawClose(id, 0, ""), s.id);
	const logged = relayLog().includes(`WebTransport session 0 on ${path}${query} (moq-lite-05)`);
	assert(logged, "the relay did not log the session with the exact path and query");
	return `${path.length + query.length} bytes`;
});

await check("WebTransport protocol follows the client's order", async () => {
	const s = await T(([u]) => window.moqTest.rawOpen(u, ["moq-lite-03", "moq-lite-05"]), relay);
	await T(([id]) => window.moqTest.rawClose(id, 0, ""), s.id);
	assert(s.protocol === "moq-lite-03", `protocol "${s.protocol}"`);
	return s.protocol;
});

await check("WebTransport CONNECT without a supported protocol takes the compat SETUP path", async () => {
	// As upstream: 200 without wt-protocol, the session then negotiates in its compat SETUP.
	const before = (relayLog().match(/WebTransport session \d+ on \S+ \(moql\)/g) ?? []).length;
	const s = await T(([u]) => window.moqTest.rawOpen(u, ["not-moq"]), relay);
	await T(([id]) => window.moqTest.rawClose(id, 0, ""), s.id);
	assert(s.protocol === "", `protocol "${s.protocol}"`);
	await waitLog(/WebTransport session \d+ on \S+ \(moql\)/, before + 1);
	return "accepted without wt-protocol";
});

await check("relay closes a WebTransport session with a code Chromium reads", async () => {
	const s = await T(([u]) => window.moqTest.rawOpen(u, ["moq-lite-05"]), relay);
	const info = await T(([id]) => window.moqTest.rawBadSetup(id), s.id);
	assert(info.closeCode === 5, `the session ended with ${JSON.stringify(info)}, expected close code 5 (decode error)`);
	return `closeCode ${info.closeCode}, reason "${info.reason}"`;
});

// ---- @moq/net over WebTransport ----

let pubConn;
let subConn;
await check("@moq/net connects over WebTransport (WebSocket fallback disabled)", async () => {
	const before = (relayLog().match(/moq-lite-05 session over WebTransport/g) ?? []).length;
	pubConn = await T(([u]) => window.moqTest.connect(u), relay);
	subConn = await T(([u]) => window.moqTest.connect(u), relay);
	for (const c of [pubConn, subConn]) {
		assert(c.transport === "webtransport", `transport ${c.transport}`);
		assert(c.version === "moq-lite-05", `version ${c.version}`);
	}
	await waitLog(/moq-lite-05 session over WebTransport/, before + 2);
	return "transport webtransport, moq-lite-05, relay logged both sessions over WebTransport";
});

// receive() checks the groups of every subscriber below; check it first against scripted
// orders of arrival, since a group may come after a newer one and that must not fail it.
await check("receive() takes a group that arrives after a newer one, fails on a missing or repeated one", async () => {
	const out = await run(process.execPath, [path.join(dir, "receive-selftest.mjs")], 30000);
	let result;
	try {
		result = JSON.parse(out.stdout.trim().split("\n").pop());
	} catch {
		throw new Error(`no result from receive-selftest.mjs: ${out.error?.message ?? ""}\n${out.stdout}\n${out.stderr}`);
	}
	if (!result.ok) throw new Error(result.error);
	return `${result.cases.length} scripted orders of arrival`;
});

if (pubConn && subConn) {
	await check("browser publishes, browser subscribes: groups and frames intact", async () => {
		const pub = await T(([c]) => window.moqTest.publish(c, "chromium/pubsub", "data", { intervalMs: 100 }), pubConn.id);
		try {
			const r = await T(([c]) => window.moqTest.receive(c, "chromium/pubsub", "data", { groups: 6 }), subConn.id);
			return `${groupRange(r)}, ${r.frames} frames, ${r.bytes} bytes`;
		} finally {
			const st = await T(([p]) => window.moqTest.stopPublisher(p), pub);
			if (st.error) throw new Error(`publisher: ${st.error}`);
		}
	});

	await check("the relay's PROBE reports (RTT, bitrate) reach @moq/net", async () => {
		const deadline = Date.now() + 5000;
		for (;;) {
			const probe = await T(([c]) => window.moqTest.probe(c), subConn.id);
			if (probe.rtt > 0 && probe.estimatedRecvRate > 0)
				return `rtt ${probe.rtt} ms, ${Math.round(probe.estimatedRecvRate / 1e6)} Mbit/s`;
			assert(Date.now() < deadline, `no report with an RTT and a rate in 5 s: ${JSON.stringify(probe)}`);
			await new Promise((r) => setTimeout(r, 100));
		}
	});

	// Older versions over WebTransport, also across versions through the relay (moq-lite
	// 03/04 frames carry no timestamps, so only the bytes are compared).
	for (const [pubVersion, subVersion] of [
		["moq-lite-04", "moq-lite-03"],
		["moq-lite-03", "moq-lite-04"],
	]) {
		await check(`${pubVersion} publisher to ${subVersion} subscriber over WebTransport`, async () => {
			const path = `chromium/${pubVersion}-to-${subVersion}`;
			const p = await T(([u, v]) => window.moqTest.connect(u, [v]), relay, pubVersion);
			const s = await T(([u, v]) => window.moqTest.connect(u, [v]), relay, subVersion);
			try {
				assert(p.version === pubVersion && s.version === subVersion, `versions ${p.version} / ${s.version}`);
				assert(p.transport === "webtransport" && s.transport === "webtransport", "not WebTransport");
				const pub = await T(([c, n]) => window.moqTest.publish(c, n, "data", { intervalMs: 100 }), p.id, path);
				try {
					const r = await T(([c, n]) => window.moqTest.receive(c, n, "data", { groups: 3, timestamps: false }), s.id, path);
					return `${groupRange(r)}, ${r.bytes} bytes`;
				} finally {
					const st = await T(([id]) => window.moqTest.stopPublisher(id), pub);
					if (st.error) throw new Error(`publisher: ${st.error}`);
				}
			} finally {
				await T(([c]) => window.moqTest.close(c), s.id);
				await T(([c]) => window.moqTest.close(c), p.id);
			}
		});
	}

	// "moql" (its compat SETUP, where the relay picks the client's first offer, moq-lite-02,
	// as upstream does) and IETF moq-transport drafts 17 and 20 by their own protocols, each
	// publisher to a subscriber of the same protocol and across protocols.
	const main = {
		url: relay,
		log: args["relay-log"],
		version: { moql: "moq-lite-02", "moqt-17": "moq-transport-17", "moqt-20": "moq-transport-20" },
		session: (proto) =>
			proto === "moql" ? "moq: .*: moq-lite-02 session over WebTransport" : `ietf: .*: ${proto} session over WebTransport`,
	};
	for (const [pubProto, subProto] of [
		["moql", "moql"],
		["moqt-17", "moqt-17"],
		["moqt-20", "moqt-20"],
		["moqt-17", "moql"],
		["moql", "moqt-20"],
	]) {
		await check(`${pubProto} publisher to ${subProto} subscriber over WebTransport`, () =>
			protocolPair(main, pubProto, subProto),
		);
	}

	await check("the relay's stream reset code reaches @moq/net (HTTP/3 error space)", async () => {
		// 30 = Unroutable: no route for the broadcast. WebTransport carries it as an HTTP/3
		// code (0x52e4a40fa8db + 30 + 30 / 0x1e) that Chromium maps back.
		const e = await T(([c]) => window.moqTest.refusedSubscription(c, "chromium/nobody-publishes", "data"), subConn.id);
		assert(e.name === "RemoteError" && e.code === 30, `got ${JSON.stringify(e)}, expected RemoteError code 30`);
		return `RemoteError code ${e.code}`;
	});

	await check("browser datagrams reach a browser subscriber", async () => {
		const pub = await T(([c]) => window.moqTest.publish(c, "chromium/datagrams", "dg", { intervalMs: 100, datagrams: true }), pubConn.id);
		try {
			const r = await T(([c]) => window.moqTest.receiveDatagrams(c, "chromium/datagrams", "dg", { count: 5 }), subConn.id);
			return `datagrams ${r.sequences.join(",")}`;
		} finally {
			const st = await T(([p]) => window.moqTest.stopPublisher(p), pub);
			if (st.error) throw new Error(`publisher: ${st.error}`);
		}
	});

	await check("an 8 MB frame crosses the relay intact (beyond the stream flow-control windows)", async () => {
		const r = await T(([p, s]) => window.moqTest.bigFrame(p, s, "chromium/big", "data", 8 << 20), pubConn.id, subConn.id);
		return `${r.bytes} bytes in ${r.ms} ms`;
	});

	await check("a burst of 300 groups (more than Chromium's stream limit) arrives", async () => {
		const pub = await T(([c]) => window.moqTest.publish(c, "chromium/burst", "data", { intervalMs: 0 }), pubConn.id);
		try {
			const job = await T(([c]) => window.moqTest.receiveBurstLater(c, "chromium/burst", "data", { last: 299 }), subConn.id);
			await T(([p]) => window.moqTest.waitUsed(p, 10000), pub);
			await T(([p]) => window.moqTest.burst(p, 300), pub);
			const r = await T(([j]) => window.moqTest.result(j), job);
			if (r.error) throw new Error(r.error);
			const s = r.summary;
			return `${s.groups} groups received intact (${s.bytes} bytes), ${s.missing} missing`;
		} finally {
			const st = await T(([p]) => window.moqTest.stopPublisher(p), pub);
			if (st.error) throw new Error(`publisher: ${st.error}`);
		}
	});

	// ---- the browser publishes over WebTransport; other clients read over other transports ----

	const mixed = await T(([c]) => window.moqTest.publish(c, "chromium/mixed", "data", { intervalMs: 100 }), pubConn.id);

	await check("browser publishes over WebTransport, Node @moq/net subscribes over WebSocket", async () => {
		const before = (relayLog().match(/session over WebSocket/g) ?? []).length;
		const out = await run(process.execPath, [path.join(dir, "node-subscribe.mjs"), relay, "chromium/mixed", "data", "5"], 30000);
		let result;
		try {
			result = JSON.parse(out.stdout.trim().split("\n").pop());
		} catch {
			throw new Error(`no result from node-subscribe.mjs: ${out.error?.message ?? ""}\n${out.stdout}\n${out.stderr}`);
		}
		if (!result.ok) throw new Error(`${result.error}\n${out.stderr}`);
		assert(result.transport === "websocket", `Node used ${result.transport}`);
		await waitLog(/session over WebSocket/, before + 1);
		return `${groupRange(result)} over ${result.transport} (${result.version})`;
	});

	if (args.moq) {
		await check("browser publishes over WebTransport, native moq subscribes over raw QUIC", async () => {
			const before = (relayLog().match(/session over QUIC/g) ?? []).length;
			const fingerprint = (await (await fetch(new URL("/certificate.sha256", relay))).text()).trim();
			// (a URL object cannot change http: into the non-special moql: scheme)
			const url = `moql://${new URL(relay).host}/`;
			// moq subscribe (tools/moq): frames to stdout, each a 4-byte big-endian length + bytes
			const argv = ["subscribe", url, "--broadcast", "chromium/mixed", "--track", "data"];
			argv.push("--framing", "length", "--count", "20", "--tls-fingerprint", fingerprint);
			const out = await run(args.moq, argv, 30000, "buffer");
			if (out.error) throw new Error(`moq ${argv.join(" ")}: ${out.error.message}\n${out.stderr}`);
			const payloads = [];
			for (let off = 0; off < out.stdout.length; ) {
				assert(off + 4 <= out.stdout.length, "truncated length prefix in moq's output");
				const len = out.stdout.readUInt32BE(off);
				assert(off + 4 + len <= out.stdout.length, "truncated frame in moq's output");
				payloads.push(new Uint8Array(out.stdout.subarray(off + 4, off + 4 + len)));
				off += 4 + len;
			}
			assert(payloads.length === 20, `moq wrote ${payloads.length} frames, expected 20`);
			const g0 = matchGroupRun(payloads);
			assert(typeof g0 === "number", g0);
			await waitLog(/session over QUIC/, before + 1);
			return `groups ${g0}..${g0 + 4} intact over raw QUIC`;
		});
	}

	const st = await T(([p]) => window.moqTest.stopPublisher(p), mixed);
	if (st.error) report("mixed publisher", false, st.error);

	await check("@moq/net close() ends both sessions at the relay", async () => {
		const before = (relayLog().match(/WebTransport session \d+ closed \(code 0\)/g) ?? []).length;
		await T(([c]) => window.moqTest.close(c), subConn.id);
		await T(([c]) => window.moqTest.close(c), pubConn.id);
		await waitLog(/WebTransport session \d+ closed \(code 0\)/, before + 2);
		return "relay logged two sessions closed with code 0";
	});
}

// Publish `path` from a connection pinned to `pubProto` and read it on one pinned to
// `subProto`, both over WebTransport to `target.url`: the negotiated versions must be
// `target.version[proto]`, the relay must log each session as `target.session(proto)`, and
// three groups must arrive intact. Only the bytes are compared: moq-lite-02 and drafts
// before 17 carry no timescale, so their frames are stamped on arrival.
async function protocolPair(target, pubProto, subProto) {
	const path = `chromium/${pubProto}-to-${subProto}`.replace(/[()]/g, "");
	const want = new Map();
	for (const proto of [pubProto, subProto]) {
		const re = target.session(proto);
		want.set(re, (want.get(re) ?? countLog(new RegExp(re), target.log)) + 1);
	}
	const protocolOf = (proto) => proto.replace(/\(.*\)$/, "");
	const p = await T(([u, v]) => window.moqTest.connect(u, [v]), target.url, protocolOf(pubProto));
	try {
		const s = await T(([u, v]) => window.moqTest.connect(u, [v]), target.url, protocolOf(subProto));
		try {
			assert(
				p.version === target.version[pubProto] && s.version === target.version[subProto],
				`versions ${p.version} / ${s.version}`,
			);
			assert(p.transport === "webtransport" && s.transport === "webtransport", "not WebTransport");
			for (const [re, count] of want) await waitLog(new RegExp(re), count, 30000, target.log);
			const pub = await T(([c, n]) => window.moqTest.publish(c, n, "data", { intervalMs: 100 }), p.id, path);
			try {
				const r = await T(([c, n]) => window.moqTest.receive(c, n, "data", { groups: 3, timestamps: false }), s.id, path);
				return `${p.version} -> ${s.version}: ${groupRange(r)}, ${r.bytes} bytes`;
			} finally {
				const st = await T(([id]) => window.moqTest.stopPublisher(id), pub);
				if (st.error) throw new Error(`publisher: ${st.error}`);
			}
		} finally {
			await T(([c]) => window.moqTest.close(c), s.id);
		}
	} finally {
		await T(([c]) => window.moqTest.close(c), p.id);
	}
}

// ---- IETF draft 14: "moql" to a relay that offers moq-transport-14 but not moq-lite-02/01 ----

if (args.relay14) {
	// @moq/net offers lite-02, lite-01, draft-14 in its compat SETUP; this relay allows only
	// the last. It logs the version it accepted once the SETUP exchange is done.
	const draft14 = {
		url: args.relay14,
		log: args["relay14-log"],
		version: { "moql(draft-14)": "moq-transport-14", "moq-lite-05": "moq-lite-05" },
		session: (proto) => `relay: .*: session accepted \\(${draft14.version[proto]}\\)`,
	};
	for (const [pubProto, subProto] of [
		["moql(draft-14)", "moql(draft-14)"],
		["moql(draft-14)", "moq-lite-05"],
		["moq-lite-05", "moql(draft-14)"],
	]) {
		await check(`${pubProto} publisher to ${subProto} subscriber over WebTransport`, () =>
			protocolPair(draft14, pubProto, subProto),
		);
	}
	await check("the draft-14 relay ran no moq-lite-02/01 session", async () => {
		const lite = countLog(/moq-lite-0[12] session/, draft14.log);
		assert(lite === 0, `${lite} moq-lite-02/01 sessions in its log`);
		const ietf = countLog(/relay: .*: session accepted \(moq-transport-14\)/, draft14.log);
		assert(ietf > 0, "no moq-transport-14 session either");
		return `${ietf} moq-transport-14 sessions`;
	});
}

// ---- the example of docs/browser.md, as a reader runs it (with this relay's URL) ----

await check("docs/browser.md example publishes and subscribes over WebTransport", async () => {
	const example = await browser.newPage();
	example.on("console", (msg) => {
		if (msg.type() !== "debug") consoleLines.push(`example console.${msg.type()}: ${msg.text()}`);
	});
	try {
		const query = new URLSearchParams({ relay, broadcast: "chromium/example", groups: "3" });
		await example.goto(`${pageUrl}example/?${query}`);
		await example.waitForFunction(() => /^(done|error)/.test(document.getElementById("status").textContent), null, {
			timeout: 20000,
		});
		const status = await example.textContent("#status");
		const log = await example.textContent("#log");
		assert(status === "done: received 3 groups over webtransport", `status "${status}"\n${log}`);
		assert(/group \d+: "hello #\d+ from the browser" \+ \[\d+, 0, 127, 255\]/.test(log), `log:\n${log}`);
		return status;
	} finally {
		await example.close();
	}
});

await check("closing a tab ends its WebTransport session at the relay", async () => {
	const tab = await browser.newPage();
	try {
		await tab.goto(pageUrl);
		await tab.waitForFunction(() => window.moqReady === true, null, { timeout: 15000 });
		const before = relayLog().length;
		const c = await tab.evaluate((u) => window.moqTest.connect(u), relay);
		await tab.evaluate(([id]) => window.moqTest.publish(id, "chromium/tab", "data", {}), [c.id]);
		await waitAnnounced("chromium/tab");
		const opened = relayLog().slice(before).match(/h3: (\S+): WebTransport session \d+ on/);
		assert(opened, "the relay logged no new WebTransport session");
		const peer = opened[1].replace(/[[\].]/g, "\\$&");
		const closedAt = Date.now();
		await tab.close();
		// Chromium usually closes the session (capsule or FIN) as the tab goes, but now and
		// then it drops the connection without a word; then the relay's idle timeout must
		// reap it (5 s in this test, restarted by the keep-alive PING sent 2 s in).
		await waitLog(new RegExp(`h3: ${peer}: WebTransport session \\d+ closed`), 1, 12000);
		const secs = ((Date.now() - closedAt) / 1000).toFixed(1);
		return `session of ${opened[1]} closed after ${secs} s`;
	} finally {
		if (!tab.isClosed()) await tab.close();
	}
});

await check("Chromium reported no QUIC protocol error", async () => {
	const errors = consoleLines.filter((line) => /net::ERR_QUIC_/.test(line));
	assert(errors.length === 0, errors.join("\n"));
	return "";
});

await browser.close();
server.close();
if (failed && consoleLines.length) {
	console.log("browser console:");
	for (const line of consoleLines.slice(-60)) console.log(`     ${line}`);
}
process.exit(failed ? 1 : 0);
