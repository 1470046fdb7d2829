// The test page's script, bundled with @moq/net by esbuild. It exposes window.moqTest so
// the driver (Playwright) can open connections, publish, subscribe and read results.
// Everything returns plain JSON; live objects stay here, named by numeric ids.
import { bigFrame, connect, Moq, receive, receiveBurst, receiveDatagrams, startPublisher } from "../client.js";

const objects = new Map();
let nextId = 1;

function keep(obj) {
	const id = nextId++;
	objects.set(id, obj);
	return id;
}

function get(id) {
	const obj = objects.get(id);
	if (!obj) throw new Error(`no object ${id}`);
	return obj;
}

// The relay's certificate pin, fetched the way @moq/net does for http:// URLs.
async function certificateHash(url) {
	const res = await fetch(new URL("/certificate.sha256", url));
	if (!res.ok) throw new Error(`GET /certificate.sha256: ${res.status}`);
	const hex = (await res.text()).trim();
	const bytes = new Uint8Array(hex.length / 2);
	for (let i = 0; i < bytes.length; i++) bytes[i] = Number.parseInt(hex.slice(2 * i, 2 * i + 2), 16);
	return bytes;
}

async function rawWebTransport(url, protocols) {
	const https = new URL(url);
	https.protocol = "https:";
	const wt = new WebTransport(https, {
		serverCertificateHashes: [{ algorithm: "sha-256", value: await certificateHash(url) }],
		protocols,
	});
	wt.closed.catch(() => {});
	return wt;
}

// How a WebTransport session ended, as JSON: {closeCode, reason} or {error}.
async function closeInfo(wt, timeoutMs) {
	const timeout = new Promise((resolve) => setTimeout(() => resolve({ error: `not closed after ${timeoutMs} ms` }), timeoutMs));
	const closed = wt.closed.then(
		(info) => ({ closeCode: info.closeCode, reason: info.reason }),
		(err) => ({ error: `${err.name}: ${err.message}` }),
	);
	return Promise.race([closed, timeout]);
}

window.moqTest = {
	webTransportSupported: () => Moq.Connection.isWebTransportSupported(),

	// @moq/net with its WebSocket fallback disabled: WebTransport or nothing. `protocols`
	// optionally replaces the offered WebTransport protocols.
	async connect(url, protocols) {
		const conn = await connect(url, { websocket: false, protocols });
		return { id: keep(conn), version: conn.version, transport: conn.transport };
	},
	// The relay's PROBE reports as @moq/net last received them ({} before the first).
	probe(id) {
		return { ...get(id).probe.peek() };
	},
	async close(id) {
		const conn = get(id);
		objects.delete(id);
		conn.close();
		await Promise.race([conn.closed, new Promise((r) => setTimeout(r, 2000))]);
	},
	publish(connId, path, track, options) {
		return keep(startPublisher(get(connId), path, track, options));
	},
	publisherState(id) {
		const p = get(id);
		return { written: p.written, datagrams: p.datagrams, used: p.used(), stopped: p.stopped, error: p.error };
	},
	burst(id, n) {
		get(id).burst(n);
		return this.publisherState(id);
	},
	// Resolves once a subscription reached the publisher (through the relay).
	async waitUsed(id, timeoutMs) {
		const deadline = Date.now() + timeoutMs;
		while (!get(id).used()) {
			if (Date.now() > deadline) throw new Error(`no subscriber reached the publisher in ${timeoutMs} ms`);
			await new Promise((r) => setTimeout(r, 20));
		}
	},
	stopPublisher(id) {
		get(id).stop();
		return this.publisherState(id);
	},
	receive(connId, path, track, options) {
		return receive(get(connId), path, track, options);
	},
	// Start a burst subscription in the background; wait for it with result().
	receiveBurstLater(connId, path, track, options) {
		const job = { done: false };
		job.promise = receiveBurst(get(connId), path, track, options).then(
			(summary) => Object.assign(job, { done: true, summary }),
			(err) => Object.assign(job, { done: true, error: String(err?.message ?? err) }),
		);
		return keep(job);
	},
	async result(id) {
		const job = get(id);
		await job.promise;
		return { summary: job.summary, error: job.error };
	},
	bigFrame(pubId, subId, path, track, size) {
		return bigFrame(get(pubId), get(subId), path, track, size);
	},
	// Subscribe to something nobody publishes: resolves to how @moq/net reports the refusal.
	async refusedSubscription(connId, path, track) {
		try {
			await receive(get(connId), path, track, { groups: 1, timeoutMs: 10000, announced: false });
		} catch (err) {
			return { name: err?.name, code: err?.code, message: String(err?.message ?? err) };
		}
		throw new Error(`${path}/${track} delivered a group`);
	},
	receiveDatagrams(connId, path, track, options) {
		return receiveDatagrams(get(connId), path, track, options);
	},

	// The browser's own WebTransport API, without @moq/net.
	async rawOpen(url, protocols) {
		const wt = await rawWebTransport(url, protocols);
		await wt.ready;
		return { id: keep(wt), protocol: wt.protocol };
	},
	// Resolves to the error a refused session reports, or throws if it was accepted.
	async rawRefused(url, protocols) {
		const wt = await rawWebTransport(url, protocols);
		try {
			await wt.ready;
		} catch (err) {
			return `${err.name}: ${err.message}`;
		}
		wt.close();
		throw new Error(`session accepted with protocol "${wt.protocol}"`);
	},
	// Close with a code and reason (the CLOSE_WEBTRANSPORT_SESSION capsule).
	async rawClose(id, closeCode, reason) {
		const wt = get(id);
		objects.delete(id);
		wt.close({ closeCode, reason });
		return closeInfo(wt, 5000);
	},
	// Send a malformed moq-lite SETUP and report how the relay ended the session.
	async rawBadSetup(id) {
		const wt = get(id);
		objects.delete(id);
		const stream = await wt.createUnidirectionalStream();
		const writer = stream.getWriter();
		// stream type SETUP, then a message of 2 bytes claiming 5 parameters; the relay may
		// stop the stream before the writes settle, so they are not awaited
		writer.write(new Uint8Array([0x01, 0x02, 0x05, 0x01])).catch(() => {});
		writer.close().catch(() => {});
		return closeInfo(wt, 5000);
	},
};
// The library itself, for ad-hoc experiments from the DevTools console or page.evaluate.
window.Moq = Moq;
window.moqReady = true;
