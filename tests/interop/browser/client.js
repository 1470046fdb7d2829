// Publish and subscribe helpers around @moq/net, shared by the browser page (bundled) and
// the Node subscriber. All checks of received content go through payload.js.
import * as Moq from "@moq/net";
import {
	bigPayload,
	checkDatagram,
	checkFrame,
	datagramPayload,
	datagramTimestampMs,
	FRAMES_PER_GROUP,
	framePayload,
	frameTimestampMs,
} from "./payload.js";

export function withTimeout(promise, ms, what) {
	let timer;
	const timeout = new Promise((_, reject) => {
		timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
	});
	return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// Connect to a relay URL. `websocket: false` disables @moq/net's WebSocket fallback, so the
// connection is WebTransport or nothing. `protocols` replaces the WebTransport protocols
// @moq/net offers (e.g. ["moq-lite-03"] to run an older version).
export async function connect(url, { websocket = true, protocols, timeoutMs = 10000 } = {}) {
	const props = websocket ? {} : { websocket: { enabled: false } };
	if (protocols) props.webtransport = { protocols };
	const conn = await withTimeout(Moq.Connection.connect(new URL(url), props), timeoutMs, `connect ${url}`);
	return conn;
}

// Write the frames of payload.js into `group` (by its sequence) and close it.
export function writeTestGroup(group) {
	const g = group.sequence;
	for (let f = 0; f < FRAMES_PER_GROUP; f++) {
		const timestamp = Moq.Time.Timestamp.fromMillis(frameTimestampMs(g, f));
		group.writeFrame({ payload: framePayload(g, f), timestamp });
	}
	group.close();
}

// Publish `path` with one track. Every `intervalMs` it writes the next group (frames as in
// payload.js) or, with `datagrams: true`, the next datagram, until stop() or `maxGroups`.
// With `intervalMs: 0` nothing is written on a timer; burst(n) writes n groups at once.
export function startPublisher(conn, path, trackName, { intervalMs = 100, maxGroups = 1000, datagrams = false } = {}) {
	const broadcast = new Moq.Broadcast.Producer();
	const track = broadcast.createTrack(trackName);
	conn.publish(Moq.Path.from(path), broadcast);
	const handle = { written: 0, datagrams: 0, stopped: false, error: "" };
	let timer;
	const writeGroup = () => {
		writeTestGroup(track.appendGroup());
		handle.written++;
	};
	const writeDatagram = () => {
		// The sequence is assigned by appendDatagram; the content follows it.
		const next = handle.datagrams;
		const seq = track.appendDatagram(Moq.Time.Timestamp.fromMillis(datagramTimestampMs(next)), datagramPayload(next));
		if (seq !== next) throw new Error(`datagram sequence ${seq}, expected ${next}`);
		handle.datagrams++;
	};
	const tick = () => {
		try {
			if (datagrams) writeDatagram();
			else writeGroup();
		} catch (err) {
			handle.error = String(err?.stack ?? err);
			handle.stop();
		}
		if (handle.written + handle.datagrams >= maxGroups) handle.stop();
	};
	handle.used = () => track.used.peek();
	handle.burst = (n) => {
		for (let i = 0; i < n && !handle.stopped; i++) tick();
	};
	handle.stop = () => {
		if (handle.stopped) return;
		handle.stopped = true;
		clearInterval(timer);
		track.close();
		broadcast.close();
	};
	if (intervalMs > 0) timer = setInterval(tick, intervalMs);
	return handle;
}

// Read one group and check every frame of it; returns [frames, bytes]. Timestamps are
// checked unless `timestamps` is false (moq-lite 03/04 carry none: the relay stamps them).
async function readGroup(group, timeoutMs, timestamps = true) {
	const g = group.sequence;
	let f = 0;
	let bytes = 0;
	for (;;) {
		const frame = await withTimeout(group.readFrame(), timeoutMs, `frame ${f} of group ${g}`);
		if (!frame) break;
		if (f >= FRAMES_PER_GROUP) throw new Error(`group ${g} has more than ${FRAMES_PER_GROUP} frames`);
		const err = checkFrame(g, f, frame.payload, timestamps ? frame.timestamp?.asMillis() : undefined);
		if (err) throw new Error(err);
		bytes += frame.payload.length;
		f++;
	}
	if (f !== FRAMES_PER_GROUP) throw new Error(`group ${g} ended after ${f} of ${FRAMES_PER_GROUP} frames`);
	return [f, bytes];
}

// Resolve once `conn` sees the broadcast at `path` announced. A subscription sent before
// that may reach the relay ahead of the publisher's announcement (separate connections, and
// with several relay workers a hop between them) and be refused as not found.
export async function waitAnnounced(conn, path, timeoutMs = 20000) {
	const parts = path.split("/");
	const name = parts.pop();
	const announced = conn.announced(Moq.Path.from(parts.join("/")));
	try {
		for (;;) {
			const ev = await withTimeout(announced.next(), timeoutMs, `the announcement of ${path}`);
			if (!ev) throw new Error(`the announcements ended before ${path} was announced`);
			if (String(ev.path) === name && ev.active) return;
		}
	} finally {
		announced.close();
	}
}

// Subscribe to `path`/`trackName` and check `groups` consecutive complete groups, wherever
// the subscription starts. They need not arrive in sequence order: when several groups wait
// to be sent, moq-lite sends the newest first (unless the subscription is ordered), and
// recvGroup() hands groups out as they arrive, so an older group may come right after a
// newer one. What must hold: every group is complete, none arrives twice and none between
// the first and the last is missing. A group still missing once one `window` sequences
// newer has arrived fails (at a group per 100 ms, that is long after it was sent). Resolves
// to a summary with `order`, the sequences in order of arrival; rejects on the first
// mismatch or timeout.
export async function receive(
	conn,
	path,
	trackName,
	{ groups = 5, timestamps = true, timeoutMs = 15000, announced = true, window = 20 } = {},
) {
	if (announced) await waitAnnounced(conn, path, timeoutMs);
	const broadcast = conn.consume(Moq.Path.from(path));
	const sub = broadcast.subscribe(trackName, { priority: 0 });
	const seen = new Set();
	const order = [];
	let lo = Infinity;
	let hi = -Infinity;
	let bytes = 0;
	let frames = 0;
	const oldestMissing = () => {
		for (let g = lo; g < hi; g++) if (!seen.has(g)) return g;
		return undefined;
	};
	try {
		for (let missing; seen.size < groups || missing !== undefined; missing = oldestMissing()) {
			if (missing !== undefined && hi - missing >= window) {
				throw new Error(`group ${missing} is missing though group ${hi} arrived (order of arrival ${order.join(",")})`);
			}
			const wanted = missing !== undefined ? `group ${missing}` : order.length ? `the group after ${hi}` : "the first group";
			const group = await withTimeout(sub.recvGroup(), timeoutMs, `${wanted} of ${path}/${trackName}`);
			if (!group) throw new Error(`track ended after ${seen.size} groups (order of arrival ${order.join(",")})`);
			const g = group.sequence;
			if (seen.has(g)) throw new Error(`group ${g} arrived twice (order of arrival ${order.join(",")})`);
			const [f, b] = await readGroup(group, timeoutMs, timestamps);
			frames += f;
			bytes += b;
			seen.add(g);
			order.push(g);
			lo = Math.min(lo, g);
			hi = Math.max(hi, g);
		}
	} finally {
		sub.close();
		broadcast.close();
	}
	const reordered = order.some((g, i) => i > 0 && g < order[i - 1]);
	return { first: lo, last: hi, groups: seen.size, frames, bytes, order, reordered };
}

// Subscribe and collect groups 0..last in any order (a burst is delivered newest first, on
// parallel streams). Finishes when all arrived, or when `last` arrived and nothing more
// came for `settleMs` (a relay may drop old groups of a burst). Every group that arrives
// must be complete and correct, and none may arrive twice.
export async function receiveBurst(conn, path, trackName, { last, settleMs = 2000, timeoutMs = 20000 } = {}) {
	await waitAnnounced(conn, path, timeoutMs);
	const broadcast = conn.consume(Moq.Path.from(path));
	const sub = broadcast.subscribe(trackName, { priority: 0 });
	const seen = new Set();
	const reads = [];
	let bytes = 0;
	try {
		const deadline = Date.now() + timeoutMs;
		while (seen.size < last + 1) {
			const wait = seen.has(last) ? settleMs : Math.max(1, deadline - Date.now());
			let group;
			try {
				group = await withTimeout(sub.recvGroup(), wait, `group ${last} of ${path}/${trackName}`);
			} catch (err) {
				if (seen.has(last)) break; /* settled */
				throw err;
			}
			if (!group) throw new Error(`track ended after ${seen.size} groups`);
			const g = group.sequence;
			if (g > last || seen.has(g)) throw new Error(`unexpected group ${g} (have ${seen.size})`);
			seen.add(g);
			reads.push(readGroup(group, timeoutMs).then(([, b]) => (bytes += b)));
		}
		await Promise.all(reads);
	} finally {
		sub.close();
		broadcast.close();
	}
	return { groups: seen.size, missing: last + 1 - seen.size, bytes };
}

// Subscribe to a track published as datagrams and check `count` of them. The relay
// forwards each datagram as a one-frame group; datagrams may be lost, so gaps are allowed
// but every one received must be intact and newer than the one before.
export async function receiveDatagrams(conn, path, trackName, { count = 5, timeoutMs = 15000 } = {}) {
	// The relay forwards datagrams as datagrams (lite-05), which @moq/net hands out on the
	// track's datagram channel, separate from its groups.
	await waitAnnounced(conn, path, timeoutMs);
	const broadcast = conn.consume(Moq.Path.from(path));
	const sub = broadcast.subscribe(trackName, { priority: 0 });
	const seen = [];
	try {
		while (seen.length < count) {
			const dg = await withTimeout(sub.recvDatagram(), timeoutMs, `datagram ${seen.length + 1} of ${path}/${trackName}`);
			if (!dg) throw new Error(`track ended after ${seen.length} datagrams`);
			const seq = dg.sequence;
			if (seen.length && seq <= seen[seen.length - 1]) throw new Error(`datagram ${seq} after ${seen[seen.length - 1]}`);
			const err = checkDatagram(seq, dg.payload, dg.timestamp?.asMillis());
			if (err) throw new Error(err);
			seen.push(seq);
		}
	} finally {
		sub.close();
		broadcast.close();
	}
	return { first: seen[0], last: seen[seen.length - 1], count: seen.length, sequences: seen };
}

// Publish one group holding one frame of `size` bytes once a subscriber is there, and read
// it back on `subConn`; resolves to the frame's size and the time it took.
export async function bigFrame(pubConn, subConn, path, trackName, size, { timeoutMs = 20000 } = {}) {
	const broadcast = new Moq.Broadcast.Producer();
	const track = broadcast.createTrack(trackName);
	pubConn.publish(Moq.Path.from(path), broadcast);
	await waitAnnounced(subConn, path, timeoutMs);
	const consumer = subConn.consume(Moq.Path.from(path));
	const sub = consumer.subscribe(trackName, { priority: 0 });
	try {
		const deadline = Date.now() + timeoutMs;
		while (!track.used.peek()) {
			if (Date.now() > deadline) throw new Error("no subscription reached the publisher");
			await new Promise((r) => setTimeout(r, 20));
		}
		const want = bigPayload(size);
		const start = performance.now();
		const group = track.appendGroup();
		group.writeFrame({ payload: want, timestamp: Moq.Time.Timestamp.fromMillis(1) });
		group.close();
		const got = await withTimeout(sub.recvGroup(), timeoutMs, "the group");
		const frame = await withTimeout(got.readFrame(), timeoutMs, "the frame");
		if (!frame) throw new Error("the group arrived empty");
		if (frame.payload.length !== size) throw new Error(`${frame.payload.length} bytes, expected ${size}`);
		for (let i = 0; i < size; i++) {
			if (frame.payload[i] !== want[i]) throw new Error(`byte ${i} is ${frame.payload[i]}, expected ${want[i]}`);
		}
		return { bytes: size, ms: Math.round(performance.now() - start) };
	} finally {
		sub.close();
		consumer.close();
		track.close();
		broadcast.close();
	}
}

export { Moq };
