// One-shot (mongosh --nodb --file): initiate replica set rs0 once, wait for a primary, then
// create or update Jiandu's application user. Safe to run on every `docker compose up`.
//
// Environment: MONGO_HOST, MONGO_ROOT_USER, MONGO_ROOT_PASSWORD_FILE, JIANDU_SERVICES (comma
// separated, default below); passwords are read from Docker secret files.
const env = process.env;

function need(name) {
  const value = env[name];
  if (!value) {
    print(`mongo-init: ${name} is not set`);
    quit(2);
  }
  return value;
}

const host = env.MONGO_HOST || "mongo1:27017";
const replicaSet = env.MONGO_REPLICA_SET || "rs0";
const rootUser = encodeURIComponent(need("MONGO_ROOT_USER"));
const rootPassword = encodeURIComponent(
  require("fs").readFileSync(need("MONGO_ROOT_PASSWORD_FILE"), "utf8").trim()
);
const admin = connect(
  `mongodb://${rootUser}:${rootPassword}@${host}/admin?directConnection=true&authSource=admin`
);

let initiated = true;
try {
  admin.adminCommand({ replSetGetStatus: 1 });
} catch (err) {
  if (err.codeName !== "NotYetInitialized") throw err;
  initiated = false;
}
if (!initiated) {
  admin.adminCommand({
    replSetInitiate: { _id: replicaSet, members: [{ _id: 0, host: host }] },
  });
  print(`mongo-init: replica set ${replicaSet} initiated with ${host}`);
}

for (let i = 0; !admin.hello().isWritablePrimary; i++) {
  if (i >= 120) {
    print("mongo-init: no primary after 120 s");
    quit(1);
  }
  sleep(1000);
}

// One user per service, readWrite on its own database only (least privilege); each password
// is a Docker secret file /run/secrets/mongo_<service>.
const fs = require("fs");
const services = (env.JIANDU_SERVICES || "gateway,hotline,casereview,penalty,notify,inspection")
  .split(",").map((name) => name.trim()).filter((name) => name.length > 0);
for (const service of services) {
  const user = `jiandu_${service}`;
  const pwd = fs.readFileSync(`/run/secrets/mongo_${service}`, "utf8").trim();
  if (!pwd) {
    print(`mongo-init: /run/secrets/mongo_${service} is empty`);
    quit(2);
  }
  const roles = [{ role: "readWrite", db: `jiandu_${service}` }];
  if (admin.getUser(user) === null) {
    admin.createUser({ user: user, pwd: pwd, roles: roles });
    print(`mongo-init: user ${user} created with readWrite on jiandu_${service}`);
  } else {
    admin.updateUser(user, { pwd: pwd, roles: roles });
    print(`mongo-init: user ${user} updated (readWrite on jiandu_${service})`);
  }
}
