// moq-relay browser example: main.js (docs/browser.md; tested by test_browser_webtransport.sh)
// Publishes a broadcast with one track and subscribes to it from a second connection,
// both over WebTransport. Query parameters (all optional):
//   relay=http://localhost:4443/  the relay; http:// makes @moq/net pin the relay's
//                                 self-signed certificate from /certificate.sha256
//   broadcast=demo                the broadcast path
//   role=both|pub|sub             publish, subscribe, or both (default) in this page
//   groups=5                      how many groups the subscriber reads before it stops
import * as Moq from "@moq/net";

const params = new URLSearchParams(location.search);
const relay = new URL(params.get("relay") ?? "http://localhost:4443/");
const path = Moq.Path.from(params.get("broadcast") ?? "demo");
const role = params.get("role") ?? "both";
const wanted = Number(params.get("groups") ?? 5);

const log = (line) => {
	document.getElementById("log").textContent += `${line}\n`;
};
const status = (text) => {
	document.getElementById("status").textContent = text;
};

// WebTransport only: without this @moq/net would also race a WebSocket connection.
async function connect(who) {
	const conn = await Moq.Connection.connect(relay, { websocket: { enabled: false } });
	log(`${who} connected to ${relay} over ${conn.transport} (${conn.version})`);
	return conn;
}

// One group every 500 ms: a text frame, then a binary frame.
async function publish() {
	const conn = await connect("publisher");
	const broadcast = new Moq.Broadcast.Producer();
	const track = broadcast.createTrack("chat");
	conn.publish(path, broadcast);
	log(`publishing ${path}/chat`);
	let n = 0;
	setInterval(() => {
		const group = track.appendGroup();
		group.writeString(`hello #${n} from the browser`);
		group.writeFrame({ payload: new Uint8Array([n & 0xff, 0x00, 0x7f, 0xff]), timestamp: Moq.Time.Timestamp.now() });
		group.close();
		n++;
	}, 500);
}

async function subscribe() {
	const conn = await connect("subscriber");
	// Wait until the relay announces the broadcast, then subscribe to its track.
	const announced = conn.announced(path);
	for (;;) {
		const event = await announced.next();
		if (!event) throw new Error("the relay ended the announcements");
		if (event.active) break;
	}
	log(`${path} is live, subscribing`);
	const track = conn.consume(path).subscribe("chat", { priority: 0 });
	for (let received = 0; received < wanted; received++) {
		const group = await track.recvGroup();
		if (!group) throw new Error("the track ended");
		const text = await group.readString();
		const binary = await group.readFrame();
		log(`group ${group.sequence}: "${text}" + [${binary.payload.join(", ")}]`);
	}
	track.close();
	announced.close();
	conn.close();
	status(`done: received ${wanted} groups over ${conn.transport}`);
}

async function main() {
	if (role !== "sub") await publish();
	if (role !== "pub") await subscribe();
	else status("publishing");
}

main().catch((err) => {
	status(`error: ${err.message}`);
	log(String(err?.stack ?? err));
});
