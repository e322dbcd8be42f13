// City deployment, once, against the mongos router of the sharded cluster (as a cluster admin):
//   mongosh "mongodb://<admin>@jiandu-mongo-mongos.mongodb.svc.cluster.local:27017/admin" \
//     --file deploy/mongo/shard-city.js
// Shards the large, district-scoped collections by district first (see deploy/README.md,
// "MongoDB shard keys"). Idempotent: collections already sharded are left alone. Small or
// globally ordered collections (outbox, timers, leases, quarantine, catalogues, audit chain,
// the gateway's feed pages)
// stay unsharded on their database's primary shard.
const PLAN = [
  // [database, collection, shard key]
  ["jiandu_hotline", "complaints", { district: 1, _id: "hashed" }],
  ["jiandu_hotline", "inbox", { _id: "hashed" }],
  ["jiandu_casereview", "cases", { district: 1, _id: "hashed" }],
  ["jiandu_casereview", "reviews", { district: 1, _id: "hashed" }],
  ["jiandu_casereview", "inbox", { _id: "hashed" }],
  ["jiandu_penalty", "filings", { district: 1, _id: "hashed" }],
  ["jiandu_penalty", "inbox", { _id: "hashed" }],
  ["jiandu_notify", "notices", { district: 1, _id: "hashed" }],
  ["jiandu_notify", "inbox", { _id: "hashed" }],
  ["jiandu_inspection", "inspections", { district: 1, _id: "hashed" }],
  ["jiandu_inspection", "inbox", { _id: "hashed" }],
  ["jiandu_gateway", "inbox", { _id: "hashed" }],
];

for (const [dbName, collName, key] of PLAN) {
  const ns = `${dbName}.${collName}`;
  const existing = db.getSiblingDB("config").collections.findOne({ _id: ns });
  if (existing && existing.key) {
    print(`${ns}: already sharded on ${JSON.stringify(existing.key)}`);
    continue;
  }
  sh.enableSharding(dbName);
  const target = db.getSiblingDB(dbName).getCollection(collName);
  // an empty collection gets its supporting index from shardCollection; a filled one needs it first
  target.createIndex(key);
  sh.shardCollection(ns, key);
  print(`${ns}: sharded on ${JSON.stringify(key)}`);
}
