// Sends Engage-shaped audience events through the official Segment Node client
// (@segment/analytics-node), pointed at an iterable-lists service by its host.
//
// Usage: node send_node.js HOST WRITE_KEY AUDIENCE COUNT
// Users node-0 … node-{COUNT-1} enter AUDIENCE; then every third user leaves it.
// Prints one JSON line: {"sent": N, "errors": [...]}; exits 1 when the client reported errors.
'use strict'
const path = require('path')

let Analytics
try {
  ;({ Analytics } = require(path.join(__dirname, '..', '..', '.test-deps', 'node', 'node_modules', '@segment', 'analytics-node')))
} catch (e) {
  console.error('@segment/analytics-node is not installed in .test-deps/node: run scripts/test (or tests/clients/install.sh) first')
  process.exit(3)
}

const [host, writeKey, audience, countText] = process.argv.slice(2)
const count = Number(countText)
const errors = []
const analytics = new Analytics({ writeKey, host, flushAt: 50, flushInterval: 200, maxRetries: 5 })
analytics.on('error', (err) => errors.push(String(err && (err.reason || err.message || err))))

const context = { personas: { computation_class: 'audience', computation_key: audience } }
let sent = 0
for (let i = 0; i < count; i++) {
  analytics.identify({ userId: `node-${i}`, traits: { email: `node-${i}@example.com`, [audience]: true }, context })
  sent++
}
for (let i = 0; i < count; i += 3) {
  analytics.track({ userId: `node-${i}`, event: 'Audience Exited', properties: { email: `node-${i}@example.com`, [audience]: false }, context })
  sent++
}
analytics.closeAndFlush({ timeout: 60000 }).then(() => {
  console.log(JSON.stringify({ sent, errors }))
  process.exit(errors.length ? 1 : 0)
})
