-- Schema version 1 (migration v1_initial only) with a few rows: made by running
-- appliance.store.migrations.MIGRATIONS[:1] on an empty file, then sqlite3 iterdump.
-- Passwords: 101 v1-password-101, 102 v1-password-102, admin v1-admin-password.
PRAGMA user_version = 1;
BEGIN TRANSACTION;
CREATE TABLE "extension" (
        "id" INTEGER NOT NULL PRIMARY KEY,
        "number" TEXT NOT NULL,
        "name" TEXT,
        "email" TEXT,
        "created_at" REAL NOT NULL,
        "enabled" INTEGER NOT NULL DEFAULT 1,
        "auth_algorithms" TEXT
    );
INSERT INTO "extension" VALUES(1,'101','Reception','desk@example.com',1700000000.0,1,NULL);
INSERT INTO "extension" VALUES(2,'102',NULL,NULL,1700000001.0,0,'MD5');
CREATE TABLE "lockout" (
        "id" INTEGER NOT NULL PRIMARY KEY,
        "kind" TEXT NOT NULL,
        "key" TEXT NOT NULL,
        "until" REAL NOT NULL,
        "failures" INTEGER NOT NULL,
        "reason" TEXT NOT NULL,
        "created_at" REAL NOT NULL
    );
INSERT INTO "lockout" VALUES(1,'address','198.51.100.9',1700000900.0,5,'5 failed REGISTERs in 300 s',1700000000.0);
CREATE TABLE "registration" (
        "id" INTEGER NOT NULL PRIMARY KEY,
        "aor" TEXT NOT NULL,
        "contact" TEXT NOT NULL,
        "expires_at" REAL NOT NULL,
        "call_id" TEXT NOT NULL,
        "cseq" INTEGER NOT NULL,
        "q" REAL,
        "transport" TEXT NOT NULL,
        "source_host" TEXT NOT NULL,
        "source_port" INTEGER NOT NULL
    );
INSERT INTO "registration" VALUES(1,'101','sip:101@192.0.2.7:5062',1700003600.0,'a84b4c76e66710@pc33',314,NULL,'udp','192.0.2.7',5062);
CREATE TABLE "role" (
        "id" INTEGER NOT NULL PRIMARY KEY,
        "name" TEXT NOT NULL,
        "description" TEXT NOT NULL DEFAULT '',
        "is_system" INTEGER NOT NULL DEFAULT 0
    );
INSERT INTO "role" VALUES(1,'administrator','Everything, including users, roles and system settings',1);
INSERT INTO "role" VALUES(2,'operator','Front desk: watches and handles calls, conferences and call records',1);
INSERT INTO "role" VALUES(3,'user','A phone user: own calls, own voicemail, own profile',1);
CREATE TABLE "role_permission" (
        "id" INTEGER NOT NULL PRIMARY KEY,
        "role_id" INTEGER NOT NULL REFERENCES "role" ("id") ON DELETE CASCADE,
        "permission" TEXT NOT NULL
    );
INSERT INTO "role_permission" VALUES(1,1,'user:read');
INSERT INTO "role_permission" VALUES(2,1,'user:write');
INSERT INTO "role_permission" VALUES(3,1,'user:delete');
INSERT INTO "role_permission" VALUES(4,1,'user:read_own');
INSERT INTO "role_permission" VALUES(5,1,'user:write_own');
INSERT INTO "role_permission" VALUES(6,1,'call:read');
INSERT INTO "role_permission" VALUES(7,1,'call:make');
INSERT INTO "role_permission" VALUES(8,1,'call:hangup');
INSERT INTO "role_permission" VALUES(9,1,'cdr:read');
INSERT INTO "role_permission" VALUES(10,1,'cdr:delete');
INSERT INTO "role_permission" VALUES(11,1,'cdr:read_own');
INSERT INTO "role_permission" VALUES(12,1,'system:read');
INSERT INTO "role_permission" VALUES(13,1,'system:write');
INSERT INTO "role_permission" VALUES(14,1,'conference:read');
INSERT INTO "role_permission" VALUES(15,1,'conference:write');
INSERT INTO "role_permission" VALUES(16,1,'conference:delete');
INSERT INTO "role_permission" VALUES(17,1,'conference:join');
INSERT INTO "role_permission" VALUES(18,1,'voicemail:read');
INSERT INTO "role_permission" VALUES(19,1,'voicemail:write');
INSERT INTO "role_permission" VALUES(20,1,'voicemail:delete');
INSERT INTO "role_permission" VALUES(21,1,'voicemail:read_own');
INSERT INTO "role_permission" VALUES(22,1,'voicemail:delete_own');
INSERT INTO "role_permission" VALUES(23,2,'user:read');
INSERT INTO "role_permission" VALUES(24,2,'user:read_own');
INSERT INTO "role_permission" VALUES(25,2,'user:write_own');
INSERT INTO "role_permission" VALUES(26,2,'call:read');
INSERT INTO "role_permission" VALUES(27,2,'call:make');
INSERT INTO "role_permission" VALUES(28,2,'call:hangup');
INSERT INTO "role_permission" VALUES(29,2,'cdr:read');
INSERT INTO "role_permission" VALUES(30,2,'system:read');
INSERT INTO "role_permission" VALUES(31,2,'conference:read');
INSERT INTO "role_permission" VALUES(32,2,'conference:write');
INSERT INTO "role_permission" VALUES(33,2,'conference:delete');
INSERT INTO "role_permission" VALUES(34,2,'conference:join');
INSERT INTO "role_permission" VALUES(35,2,'voicemail:read');
INSERT INTO "role_permission" VALUES(36,2,'voicemail:read_own');
INSERT INTO "role_permission" VALUES(37,2,'voicemail:delete_own');
INSERT INTO "role_permission" VALUES(38,3,'user:read_own');
INSERT INTO "role_permission" VALUES(39,3,'user:write_own');
INSERT INTO "role_permission" VALUES(40,3,'call:make');
INSERT INTO "role_permission" VALUES(41,3,'cdr:read_own');
INSERT INTO "role_permission" VALUES(42,3,'conference:join');
INSERT INTO "role_permission" VALUES(43,3,'voicemail:read_own');
INSERT INTO "role_permission" VALUES(44,3,'voicemail:delete_own');
CREATE TABLE "sip_credential" (
        "id" INTEGER NOT NULL PRIMARY KEY,
        "extension_id" INTEGER NOT NULL
            REFERENCES "extension" ("id") ON DELETE CASCADE,
        "algorithm" TEXT NOT NULL,
        "realm" TEXT NOT NULL,
        "ha1" TEXT NOT NULL
    );
INSERT INTO "sip_credential" VALUES(1,1,'MD5','yakyak.local','0f7b4d418b22d47d02c5095637fafb80');
INSERT INTO "sip_credential" VALUES(2,1,'SHA-256','yakyak.local','76941d4ab6848b6444aeb82efd321423dc35b94862bbf8fc9440e72245b25e01');
INSERT INTO "sip_credential" VALUES(3,1,'SHA-512-256','yakyak.local','0f9668577f3e8f9486fc358c9b3b3c6aa601390e139eb1729505b285e3d890f2');
INSERT INTO "sip_credential" VALUES(4,2,'MD5','yakyak.local','ae3ae5c3e8a46ce7a771eb1a1aebcda6');
INSERT INTO "sip_credential" VALUES(5,2,'SHA-256','yakyak.local','cee27bbb1173f3871d566c5a5b35f813421d4bc599fb95e531a60c2a7bd9deef');
INSERT INTO "sip_credential" VALUES(6,2,'SHA-512-256','yakyak.local','66d96aabfad62e558d7886d8fe2af97559b984b69431d4087c852b890a6e1968');
CREATE TABLE "user" (
        "id" INTEGER NOT NULL PRIMARY KEY,
        "username" TEXT NOT NULL,
        "password_hash" TEXT NOT NULL,
        "role_id" INTEGER NOT NULL REFERENCES "role" ("id") ON DELETE RESTRICT,
        "extension_id" INTEGER REFERENCES "extension" ("id") ON DELETE SET NULL,
        "must_change_password" INTEGER NOT NULL DEFAULT 1,
        "created_at" REAL NOT NULL
    );
INSERT INTO "user" VALUES(1,'admin','scrypt$16384$8$1$Zml4dHVyZS1zYWx0LXYxIQ==$aU7fGmXZVOXM/AeGOV5NacU0C87Lt0gFhOm5MR9bXPQ=',1,NULL,1,1700000000.0);
CREATE UNIQUE INDEX "extension_number" ON "extension" ("number");
CREATE UNIQUE INDEX "sip_credential_extension_id_algorithm" ON "sip_credential" ("extension_id", "algorithm");
CREATE UNIQUE INDEX "role_name" ON "role" ("name");
CREATE UNIQUE INDEX "role_permission_role_id_permission" ON "role_permission" ("role_id", "permission");
CREATE UNIQUE INDEX "user_username" ON "user" ("username");
CREATE INDEX "user_role_id" ON "user" ("role_id");
CREATE INDEX "user_extension_id" ON "user" ("extension_id");
CREATE UNIQUE INDEX "registration_aor_contact" ON "registration" ("aor", "contact");
CREATE INDEX "registration_expires_at" ON "registration" ("expires_at");
CREATE UNIQUE INDEX "lockout_kind_key" ON "lockout" ("kind", "key");
COMMIT;
