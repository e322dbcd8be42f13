// One-shot (mongosh --nodb --file): initiate replica set rs0 once, wait for a primary, then
// create or update Jiandu's application user. Safe to run on every `docker compose up`.
//
// Environment: MONGO_HOST, MONGO_ROOT_USER, MONGO_ROOT_PASSWORD, JIANDU_MONGO_APP_USER,
// JIANDU_MONGO_APP_PASSWORD, JIANDU_MONGO_DATABASES (comma separated, default below).
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
// One database per service (ServiceSettings.database = "jiandu_<service>").
const databases = (
  env.JIANDU_MONGO_DATABASES ||
  "jiandu_gateway,jiandu_hotline,jiandu_casereview,jiandu_penalty,jiandu_notify,jiandu_inspection"
).split(",").map((name) => name.trim()).filter((name) => name.length > 0);

const rootUser = encodeURIComponent(need("MONGO_ROOT_USER"));
const rootPassword = encodeURIComponent(need("MONGO_ROOT_PASSWORD"));
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

const appUser = need("JIANDU_MONGO_APP_USER");
const appPassword = need("JIANDU_MONGO_APP_PASSWORD");
const roles = databases.map((name) => ({ role: "readWrite", db: name }));
if (admin.getUser(appUser) === null) {
  admin.createUser({ user: appUser, pwd: appPassword, roles: roles });
  print(`mongo-init: user ${appUser} created with readWrite on ${databases.join(", ")}`);
} else {
  admin.updateUser(appUser, { pwd: appPassword, roles: roles });
  print(`mongo-init: user ${appUser} updated`);
}
