// kafkajs (pure JavaScript, its own protocol code) against synclogd's Kafka listener: admin createTopics and
// fetchTopicMetadata, an acks=-1 producer with keys and headers (none and gzip), a consumer group that commits,
// a restart that resumes from the commits, and two members splitting the partitions. Run by kafkajs.sh.
// Usage: node kafkajs.js BROKER; prints one "ok: ..." line per check, exits 1 at the first failure.
'use strict';
const { Kafka, logLevel, CompressionTypes } = require('kafkajs');

const broker = process.argv[2];
const kafka = new Kafka({ clientId: 'synclog-interop', brokers: [broker], logLevel: logLevel.WARN });
const TIMEOUT_MS = 30000;

function check(cond, what) {
  if (!cond) {
    console.error('FAIL: ' + what);
    process.exit(1);
  }
  console.log('ok: ' + what.split(':')[0]);
}

async function until(cond, what) {
  const deadline = Date.now() + TIMEOUT_MS;
  while (!cond()) {
    if (Date.now() > deadline) check(false, what);
    await new Promise((r) => setTimeout(r, 100));
  }
}

// Read with group GROUP until `want` distinct records were seen (or fail); commits as kafkajs does after each
// batch. Returns the records seen, as "partition/offset" strings.
async function groupRead(group, topic, want, members) {
  const consumers = [];
  const seen = [];
  const assigned = [];
  for (let i = 0; i < members; i++) {
    const c = kafka.consumer({ groupId: group, sessionTimeout: 10000, heartbeatInterval: 500 });
    await c.connect();
    await c.subscribe({ topic, fromBeginning: true });
    assigned.push(new Set());
    c.on(c.events.GROUP_JOIN, (e) => {
      assigned[i] = new Set(e.payload.memberAssignment[topic] || []);
    });
    await c.run({
      eachMessage: async ({ partition, message }) => {
        seen.push(`${partition}/${message.offset}`);
      },
    });
    consumers.push(c);
  }
  // With two members, also until the rebalance gave each its half (the first may read all before the second joins).
  const split = () => members === 1 || assigned.every((a) => a.size === 4 / members);
  await until(() => new Set(seen).size >= want && split(),
    `group ${group} read ${new Set(seen).size} of ${want}, assignments ${JSON.stringify(assigned.map((a) => [...a]))}`);
  const parts = assigned.map((a) => [...a].sort());
  for (const c of consumers) await c.disconnect();
  return { seen, split: parts };
}

async function main() {
  const admin = kafka.admin();
  await admin.connect();
  const created = await admin.createTopics({ topics: [{ topic: 'js', numPartitions: 4 }], waitForLeaders: true });
  check(created === true, 'createTopics: ' + created);
  const md = await admin.fetchTopicMetadata({ topics: ['js'] });
  check(md.topics[0].partitions.length === 4, 'fetchTopicMetadata: ' + JSON.stringify(md));

  const producer = kafka.producer();
  await producer.connect();
  for (const [codec, name] of [[CompressionTypes.None, 'none'], [CompressionTypes.GZIP, 'gzip']]) {
    const messages = [];
    for (let i = 0; i < 100; i++)
      messages.push({
        key: `k${i}`,
        value: JSON.stringify({ i, codec: name }),
        headers: { v: `${i + 1}`, origin: 'live' },
      });
    try {
      const r = await producer.send({ topic: 'js', acks: -1, compression: codec, messages });
      check(r.every((p) => p.errorCode === 0), `produce (${name}): ` + JSON.stringify(r));
    } catch (e) {
      check(false, `produce (${name}): ${e.message}`);
    }
  }
  await producer.disconnect();
  const offsets = await admin.fetchTopicOffsets('js');
  const total = offsets.reduce((n, p) => n + Number(p.high), 0);
  check(total === 200, 'fetchTopicOffsets: ' + JSON.stringify(offsets));

  // A group reads everything and commits; a restart of it finds nothing left.
  const first = await groupRead('jsgroup', 'js', 200, 1);
  check(new Set(first.seen).size === 200 && first.seen.length === 200,
    'group read each record once: ' + first.seen.length);
  const committed = await admin.fetchOffsets({ groupId: 'jsgroup', topics: ['js'] });
  const sum = committed[0].partitions.reduce((n, p) => n + Number(p.offset), 0);
  check(sum === 200, 'fetchOffsets after the group: ' + JSON.stringify(committed));

  // Two members in a new group split the four partitions.
  const two = await groupRead('jssplit', 'js', 200, 2);
  const all = two.split.flat();
  check(new Set(all).size === 4 && all.length === 4 && two.split.every((s) => s.length === 2),
    'two members split the partitions: ' + JSON.stringify(two.split));
  const groups = await admin.describeGroups(['jsgroup']);
  check(groups.groups[0].state === 'Empty', 'describeGroups: ' + JSON.stringify(groups));
  await admin.deleteTopics({ topics: ['js'] });
  const left = await admin.listTopics();
  check(!left.includes('js'), 'deleteTopics: ' + JSON.stringify(left));
  await admin.disconnect();
}

main().catch((e) => {
  console.error('FAIL: ' + (e.stack || e));
  process.exit(1);
});
