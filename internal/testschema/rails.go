package testschema

// RailsDDL is a schema shaped like a Rails (or Django) SaaS application
// before pgtenancy, the kind that needed a day of hand work to adopt:
//
//   - integer (serial) keys: accounts.id and every account_id are int4;
//   - accounts is the root; most tables have account_id, few declare
//     foreign keys (inboxes, contacts, conversations, messages declare
//     none to accounts, conversations none to inboxes, messages none to
//     conversations);
//   - contact_inboxes and team_members are join tables without
//     account_id, reaching an account through contacts and teams;
//   - taggings is polymorphic (taggable_type, taggable_id) without
//     account_id;
//   - notifications has account_id and a polymorphic primary actor;
//   - canned_responses rows with a NULL account_id are defaults shared by
//     every account;
//   - users are global and written by every sign-in (Devise), tags
//     global and read-only;
//   - conversations.contact_id and team_members.team_id are DEFERRABLE
//     INITIALLY DEFERRED, as Django creates every foreign key;
//   - contacts.ref takes a sequence that no column owns, and a trigger
//     numbers conversations from another one.
const RailsDDL = `
CREATE TABLE accounts (
    id serial PRIMARY KEY,
    name text NOT NULL
);
CREATE TABLE users (
    id serial PRIMARY KEY,
    email text NOT NULL UNIQUE,
    sign_in_count integer NOT NULL DEFAULT 0,
    last_sign_in_at timestamptz
);
CREATE TABLE tags (
    id serial PRIMARY KEY,
    name text NOT NULL UNIQUE
);
CREATE TABLE account_users (
    id serial PRIMARY KEY,
    account_id integer NOT NULL REFERENCES accounts (id),
    user_id integer NOT NULL REFERENCES users (id),
    role text NOT NULL DEFAULT 'agent'
);
CREATE TABLE inboxes (
    id serial PRIMARY KEY,
    account_id integer NOT NULL,
    name text NOT NULL
);
CREATE SEQUENCE contact_refs;
CREATE TABLE contacts (
    id serial PRIMARY KEY,
    account_id integer NOT NULL,
    name text NOT NULL,
    ref integer NOT NULL DEFAULT nextval('contact_refs')
);
CREATE TABLE contact_inboxes (
    id serial PRIMARY KEY,
    contact_id integer NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    inbox_id integer NOT NULL REFERENCES inboxes (id) ON DELETE CASCADE,
    source_id text NOT NULL
);
CREATE SEQUENCE conversation_display_ids;
CREATE TABLE conversations (
    id serial PRIMARY KEY,
    account_id integer NOT NULL,
    inbox_id integer NOT NULL,
    contact_id integer REFERENCES contacts (id) DEFERRABLE INITIALLY DEFERRED,
    display_id integer NOT NULL DEFAULT 0
);
CREATE FUNCTION conversations_display_id() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.display_id := nextval('conversation_display_ids');
    RETURN NEW;
END
$$;
CREATE TRIGGER conversations_display_id BEFORE INSERT ON conversations
    FOR EACH ROW EXECUTE FUNCTION conversations_display_id();
CREATE TABLE messages (
    id serial PRIMARY KEY,
    account_id integer NOT NULL,
    conversation_id integer NOT NULL,
    content text NOT NULL
);
CREATE TABLE teams (
    id serial PRIMARY KEY,
    account_id integer NOT NULL REFERENCES accounts (id),
    name text NOT NULL
);
CREATE TABLE team_members (
    id serial PRIMARY KEY,
    team_id integer NOT NULL REFERENCES teams (id) DEFERRABLE INITIALLY DEFERRED,
    user_id integer NOT NULL REFERENCES users (id)
);
CREATE TABLE taggings (
    id serial PRIMARY KEY,
    tag_id integer NOT NULL REFERENCES tags (id),
    taggable_type character varying NOT NULL,
    taggable_id integer NOT NULL
);
CREATE TABLE notifications (
    id serial PRIMARY KEY,
    account_id integer NOT NULL,
    user_id integer NOT NULL REFERENCES users (id),
    primary_actor_type character varying NOT NULL,
    primary_actor_id integer NOT NULL
);
CREATE TABLE canned_responses (
    id serial PRIMARY KEY,
    account_id integer REFERENCES accounts (id),
    short_code text NOT NULL,
    content text NOT NULL
);
`

// RailsSeed fills RailsDDL's tables for accounts 1 and 2: every row of
// account 1 has a counterpart in account 2, and two canned responses are
// shared (NULL account_id).
const RailsSeed = `
INSERT INTO accounts (id, name) VALUES (1, 'Acme'), (2, 'Globex');
SELECT setval('accounts_id_seq', 2);
INSERT INTO users (id, email) VALUES (1, 'ann@acme.test'), (2, 'bob@globex.test'), (3, 'cid@both.test');
SELECT setval('users_id_seq', 3);
INSERT INTO tags (id, name) VALUES (1, 'vip'), (2, 'billing');
SELECT setval('tags_id_seq', 2);
INSERT INTO account_users (account_id, user_id, role) VALUES (1, 1, 'admin'), (2, 2, 'admin'), (1, 3, 'agent'), (2, 3, 'agent');
INSERT INTO inboxes (id, account_id, name) VALUES (11, 1, 'Acme web'), (21, 2, 'Globex mail');
SELECT setval('inboxes_id_seq', 100);
INSERT INTO contacts (id, account_id, name) VALUES (12, 1, 'Alice'), (13, 1, 'Arthur'), (22, 2, 'Gina');
SELECT setval('contacts_id_seq', 100);
INSERT INTO contact_inboxes (contact_id, inbox_id, source_id) VALUES (12, 11, 'a-1'), (13, 11, 'a-2'), (22, 21, 'g-1');
INSERT INTO conversations (id, account_id, inbox_id, contact_id) VALUES (14, 1, 11, 12), (24, 2, 21, 22);
SELECT setval('conversations_id_seq', 100);
INSERT INTO messages (account_id, conversation_id, content) VALUES
    (1, 14, 'hello from Alice'), (1, 14, 'hi Alice'), (2, 24, 'hello from Gina');
INSERT INTO teams (id, account_id, name) VALUES (15, 1, 'Acme support'), (25, 2, 'Globex sales');
SELECT setval('teams_id_seq', 100);
INSERT INTO team_members (team_id, user_id) VALUES (15, 1), (15, 3), (25, 2);
INSERT INTO taggings (tag_id, taggable_type, taggable_id) VALUES
    (1, 'Contact', 12), (2, 'Conversation', 14), (1, 'Contact', 22);
INSERT INTO notifications (account_id, user_id, primary_actor_type, primary_actor_id) VALUES
    (1, 1, 'Conversation', 14), (2, 2, 'Conversation', 24);
INSERT INTO canned_responses (account_id, short_code, content) VALUES
    (1, 'thanks', 'Thanks from Acme'), (2, 'thanks', 'Thanks from Globex'),
    (NULL, 'hello', 'Hello! How can we help?'), (NULL, 'bye', 'Have a nice day.');
`
