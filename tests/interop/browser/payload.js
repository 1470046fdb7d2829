// Deterministic test content shared by the page (publisher and subscriber) and the Node
// subscriber: what frame f of group g holds and carries as its timestamp. A subscriber that
// joins at any group can check every byte it receives without talking to the publisher.

export const FRAMES_PER_GROUP = 4;

// Sizes cover a one-byte frame, frames around one QUIC packet, and in every third group a
// frame larger than a qmux record (16382 bytes), so it spans many packets and records.
export function frameSize(g, f) {
	switch (f) {
		case 0:
			return 1 + (g % 7);
		case 1:
			return 255;
		case 2:
			return 1150 + ((g * 37) % 500);
		default:
			return g % 3 === 0 ? 40000 + g : 17;
	}
}

// Every byte value occurs; the pattern differs per group and frame.
export function framePayload(g, f) {
	const n = frameSize(g, f);
	const out = new Uint8Array(n);
	for (let i = 0; i < n; i++) out[i] = (g * 131 + f * 29 + i * 7 + (i >> 8)) & 0xff;
	return out;
}

// Milliseconds; not monotonic across groups on purpose (frame deltas may be negative).
export function frameTimestampMs(g, f) {
	return 1000 * g + (f % 2 === 0 ? 10 * f : 100 - f);
}

// Compare one received frame with the expected one; returns an error string or "".
export function checkFrame(g, f, payload, timestampMs) {
	const want = framePayload(g, f);
	if (!(payload instanceof Uint8Array)) return `group ${g} frame ${f}: payload is not bytes`;
	if (payload.length !== want.length)
		return `group ${g} frame ${f}: ${payload.length} bytes, expected ${want.length}`;
	for (let i = 0; i < want.length; i++) {
		if (payload[i] !== want[i])
			return `group ${g} frame ${f}: byte ${i} is ${payload[i]}, expected ${want[i]}`;
	}
	if (timestampMs !== undefined && timestampMs !== frameTimestampMs(g, f))
		return `group ${g} frame ${f}: timestamp ${timestampMs} ms, expected ${frameTimestampMs(g, f)}`;
	return "";
}

// Datagram n (its sequence number): one frame, small enough for one QUIC datagram.
export function datagramPayload(n) {
	const out = new Uint8Array(1 + ((n * 53) % 900));
	for (let i = 0; i < out.length; i++) out[i] = (n * 17 + i * 11 + 3) & 0xff;
	return out;
}

export function datagramTimestampMs(n) {
	return 500 * n + 7;
}

export function checkDatagram(n, payload, timestampMs) {
	const want = datagramPayload(n);
	if (!(payload instanceof Uint8Array)) return `datagram ${n}: payload is not bytes`;
	if (payload.length !== want.length) return `datagram ${n}: ${payload.length} bytes, expected ${want.length}`;
	for (let i = 0; i < want.length; i++) {
		if (payload[i] !== want[i]) return `datagram ${n}: byte ${i} is ${payload[i]}, expected ${want[i]}`;
	}
	if (timestampMs !== undefined && timestampMs !== datagramTimestampMs(n))
		return `datagram ${n}: timestamp ${timestampMs} ms, expected ${datagramTimestampMs(n)}`;
	return "";
}

// Frames received without their group numbers (e.g. from the native tool's output) must be
// whole consecutive groups: find the first group g0 for which frame i is frame i % F of
// group g0 + i / F. Returns g0, or an error string.
export function matchGroupRun(payloads, maxGroup = 100000) {
	if (payloads.length === 0 || payloads.length % FRAMES_PER_GROUP !== 0)
		return `${payloads.length} frames is not a whole number of ${FRAMES_PER_GROUP}-frame groups`;
	const same = (a, b) => a.length === b.length && a.every((v, i) => v === b[i]);
	for (let g0 = 0; g0 <= maxGroup; g0++) {
		if (!same(payloads[0], framePayload(g0, 0)) || !same(payloads[1], framePayload(g0, 1))) continue;
		for (let i = 0; i < payloads.length; i++) {
			const g = g0 + Math.floor(i / FRAMES_PER_GROUP);
			const f = i % FRAMES_PER_GROUP;
			if (!same(payloads[i], framePayload(g, f)))
				return `frame ${i} (${payloads[i].length} bytes) is not frame ${f} of group ${g} (${frameSize(g, f)} bytes)`;
		}
		return g0;
	}
	return `the first frames match no group up to ${maxGroup}`;
}

// One large frame of n bytes (larger than the QUIC stream flow-control windows).
export function bigPayload(n) {
	const out = new Uint8Array(n);
	for (let i = 0; i < n; i++) out[i] = (i * 7 + (i >> 12)) & 0xff;
	return out;
}
