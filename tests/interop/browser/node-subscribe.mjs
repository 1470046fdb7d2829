// Subscribe with @moq/net from Node, where it has no WebTransport and so connects over
// WebSocket (qmux), and check the groups with receive() exactly like the page does.
// Usage: node node-subscribe.mjs <relay-url> <broadcast> <track> <groups>
// Prints one JSON line: {ok, transport, version, first, last, groups, frames, bytes, order,
// reordered} or {ok:false, error}.
import WebSocket from "ws";

// Node 20 has neither a global WebSocket nor Promise.withResolvers; @moq/net needs both.
globalThis.WebSocket ??= WebSocket;
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
// Keep stdout for the result line: the library logs connection details with console.debug.
console.debug = () => {};
console.warn = (...args) => process.stderr.write(`${args.join(" ")}\n`);

const { connect, receive } = await import("./client.js");
const [url, broadcast, track, groups] = process.argv.slice(2);
let conn;
try {
	conn = await connect(url, { websocket: true });
	const summary = await receive(conn, broadcast, track, { groups: Number(groups) });
	console.log(JSON.stringify({ ok: true, transport: conn.transport, version: conn.version, ...summary }));
	conn.close();
	process.exit(0);
} catch (err) {
	console.log(JSON.stringify({ ok: false, transport: conn?.transport, error: String(err?.message ?? err) }));
	conn?.close();
	process.exit(1);
}
