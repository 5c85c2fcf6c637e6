package testschema

// ChatwootDDL is a second Rails-shaped schema, shaped like Chatwoot's
// (a support desk) and unlike RailsDDL in the ways real schemas are:
//
//   - mixed key widths: accounts.id is serial (integer) while account_id
//     is integer in older tables and bigint in newer ones, and references
//     are bigint to integer keys (contact_inboxes.contact_id);
//   - only three foreign keys are declared (campaign_messages to
//     campaigns and contacts, inboxes to portals);
//   - join tables without account_id (contact_inboxes, inbox_members,
//     team_members, campaign_messages), one without a primary key
//     (portals_members), and taggings, polymorphic;
//   - nullable account_id everywhere in some tables, with rows of no
//     account that every account shares (agent_bots, email_templates),
//     and references to those shared rows from tenant rows
//     (agent_bot_inboxes.agent_bot_id);
//   - globals: users (Devise writes them), installation_configs,
//     platform_apps, tags, access_tokens (polymorphic over users, bots
//     and platform apps: looked up before the account is known), and
//     Rails' schema_migrations and ar_internal_metadata;
//   - display ids from sequences that a trigger on accounts creates per
//     account (conv_dpid_seq_<id>), used by triggers on conversations and
//     campaigns;
//   - unique keys without account_id (conversations.uuid, portals.slug),
//     expression and partial indexes, json and jsonb columns.
const ChatwootDDL = `CREATE TABLE schema_migrations (version character varying PRIMARY KEY);
CREATE TABLE ar_internal_metadata (key character varying PRIMARY KEY, value character varying,
    created_at timestamp(6) NOT NULL, updated_at timestamp(6) NOT NULL);
CREATE TABLE accounts (id serial PRIMARY KEY, name character varying NOT NULL,
    created_at timestamp NOT NULL DEFAULT now(), updated_at timestamp NOT NULL DEFAULT now(),
    locale integer DEFAULT 0, domain character varying(100), feature_flags bigint DEFAULT 0 NOT NULL,
    limits jsonb DEFAULT '{}', custom_attributes jsonb DEFAULT '{}', status integer DEFAULT 0);
CREATE INDEX index_accounts_on_status ON accounts (status);
CREATE TABLE users (id serial PRIMARY KEY, provider character varying DEFAULT 'email' NOT NULL,
    uid character varying DEFAULT '' NOT NULL, encrypted_password character varying DEFAULT '' NOT NULL,
    reset_password_token character varying, sign_in_count integer DEFAULT 0 NOT NULL,
    current_sign_in_at timestamp, last_sign_in_at timestamp, name character varying NOT NULL,
    email character varying, tokens json, pubsub_token character varying, type character varying,
    created_at timestamp NOT NULL DEFAULT now(), updated_at timestamp NOT NULL DEFAULT now());
CREATE UNIQUE INDEX index_users_on_uid_and_provider ON users (uid, provider);
CREATE UNIQUE INDEX index_users_on_pubsub_token ON users (pubsub_token);
CREATE TABLE installation_configs (id bigserial PRIMARY KEY, name character varying NOT NULL,
    serialized_value jsonb DEFAULT '{}' NOT NULL, locked boolean DEFAULT true NOT NULL,
    created_at timestamp(6) NOT NULL DEFAULT now(), updated_at timestamp(6) NOT NULL DEFAULT now());
CREATE UNIQUE INDEX index_installation_configs_on_name ON installation_configs (name);
CREATE TABLE platform_apps (id bigserial PRIMARY KEY, name character varying NOT NULL);
CREATE TABLE access_tokens (id bigserial PRIMARY KEY, owner_type character varying, owner_id bigint,
    token character varying);
CREATE UNIQUE INDEX index_access_tokens_on_token ON access_tokens (token);
CREATE INDEX index_access_tokens_on_owner_type_and_owner_id ON access_tokens (owner_type, owner_id);
CREATE TABLE account_users (id bigserial PRIMARY KEY, account_id bigint, user_id bigint,
    role integer DEFAULT 0, inviter_id bigint);
CREATE UNIQUE INDEX uniq_user_id_per_account_id ON account_users (account_id, user_id);
CREATE INDEX index_account_users_on_user_id ON account_users (user_id);
CREATE TABLE portals (id bigserial PRIMARY KEY, account_id integer NOT NULL, name character varying NOT NULL,
    slug character varying NOT NULL, config jsonb DEFAULT '{"allowed_locales": ["en"]}');
CREATE UNIQUE INDEX index_portals_on_slug ON portals (slug);
CREATE TABLE portals_members (portal_id bigint NOT NULL, user_id bigint NOT NULL);
CREATE UNIQUE INDEX index_portals_members_on_portal_id_and_user_id ON portals_members (portal_id, user_id);
CREATE TABLE inboxes (id serial PRIMARY KEY, channel_id integer NOT NULL, account_id integer NOT NULL,
    name character varying NOT NULL, channel_type character varying, portal_id bigint,
    auto_assignment_config jsonb DEFAULT '{}');
CREATE INDEX index_inboxes_on_account_id ON inboxes (account_id);
CREATE INDEX index_inboxes_on_channel_id_and_channel_type ON inboxes (channel_id, channel_type);
CREATE TABLE channel_web_widgets (id serial PRIMARY KEY, website_url character varying, account_id integer,
    website_token character varying);
CREATE UNIQUE INDEX index_channel_web_widgets_on_website_token ON channel_web_widgets (website_token);
CREATE TABLE inbox_members (id serial PRIMARY KEY, user_id integer NOT NULL, inbox_id integer NOT NULL);
CREATE UNIQUE INDEX index_inbox_members_on_inbox_id_and_user_id ON inbox_members (inbox_id, user_id);
CREATE TABLE contacts (id serial PRIMARY KEY, name character varying DEFAULT '', email character varying,
    phone_number character varying, account_id integer NOT NULL, identifier character varying,
    additional_attributes jsonb DEFAULT '{}', custom_attributes jsonb DEFAULT '{}',
    last_activity_at timestamp, blocked boolean DEFAULT false NOT NULL);
CREATE INDEX index_contacts_on_lower_email_account_id ON contacts (lower(email::text), account_id);
CREATE UNIQUE INDEX uniq_email_per_account_contact ON contacts (email, account_id);
CREATE INDEX index_resolved_contact_account_id ON contacts (account_id)
    WHERE email::text <> '' OR phone_number::text <> '' OR identifier::text <> '';
CREATE TABLE contact_inboxes (id bigserial PRIMARY KEY, contact_id bigint, inbox_id bigint,
    source_id character varying NOT NULL, hmac_verified boolean DEFAULT false, pubsub_token character varying);
CREATE UNIQUE INDEX index_contact_inboxes_on_inbox_id_and_source_id ON contact_inboxes (inbox_id, source_id);
CREATE UNIQUE INDEX index_contact_inboxes_on_pubsub_token ON contact_inboxes (pubsub_token);
CREATE INDEX index_contact_inboxes_on_contact_id ON contact_inboxes (contact_id);
CREATE TABLE teams (id bigserial PRIMARY KEY, name character varying NOT NULL, account_id bigint NOT NULL);
CREATE UNIQUE INDEX index_teams_on_name_and_account_id ON teams (name, account_id);
CREATE TABLE team_members (id bigserial PRIMARY KEY, team_id bigint NOT NULL, user_id bigint NOT NULL);
CREATE UNIQUE INDEX index_team_members_on_team_id_and_user_id ON team_members (team_id, user_id);
CREATE TABLE campaigns (id bigserial PRIMARY KEY, display_id integer NOT NULL, title character varying NOT NULL,
    message text NOT NULL, account_id bigint NOT NULL, inbox_id bigint NOT NULL, audience jsonb DEFAULT '[]');
CREATE TABLE campaign_messages (id bigserial PRIMARY KEY, campaign_id bigint NOT NULL, contact_id bigint NOT NULL,
    status character varying DEFAULT 'pending' NOT NULL);
CREATE TABLE conversations (id serial PRIMARY KEY, account_id integer NOT NULL, inbox_id integer NOT NULL,
    status integer DEFAULT 0 NOT NULL, assignee_id integer, contact_id bigint, display_id integer NOT NULL,
    contact_inbox_id bigint, uuid uuid DEFAULT gen_random_uuid() NOT NULL, team_id bigint, campaign_id bigint,
    last_activity_at timestamp DEFAULT CURRENT_TIMESTAMP NOT NULL, cached_label_list text);
CREATE UNIQUE INDEX index_conversations_on_account_id_and_display_id ON conversations (account_id, display_id);
CREATE UNIQUE INDEX index_conversations_on_uuid ON conversations (uuid);
CREATE INDEX index_conversations_on_id_and_account_id ON conversations (account_id, id);
CREATE TABLE messages (id serial PRIMARY KEY, content text, account_id integer NOT NULL, inbox_id integer NOT NULL,
    conversation_id integer NOT NULL, message_type integer NOT NULL, created_at timestamp NOT NULL DEFAULT now(),
    private boolean DEFAULT false NOT NULL, content_attributes json DEFAULT '{}', sender_type character varying,
    sender_id bigint);
CREATE INDEX index_messages_on_account_id ON messages (account_id);
CREATE INDEX index_messages_on_conversation_id ON messages (conversation_id);
CREATE TABLE attachments (id serial PRIMARY KEY, file_type integer DEFAULT 0, message_id integer NOT NULL,
    account_id integer NOT NULL);
CREATE TABLE labels (id bigserial PRIMARY KEY, title character varying, account_id bigint);
CREATE UNIQUE INDEX index_labels_on_title_and_account_id ON labels (title, account_id);
CREATE TABLE tags (id serial PRIMARY KEY, name character varying, taggings_count integer DEFAULT 0);
CREATE UNIQUE INDEX index_tags_on_name ON tags (name);
CREATE TABLE taggings (id serial PRIMARY KEY, tag_id integer, taggable_type character varying, taggable_id integer,
    tagger_type character varying, tagger_id integer, context character varying(128), created_at timestamp);
CREATE UNIQUE INDEX taggings_idx ON taggings (tag_id, taggable_id, taggable_type, context, tagger_id, tagger_type);
CREATE TABLE notifications (id bigserial PRIMARY KEY, account_id bigint NOT NULL, user_id bigint NOT NULL,
    notification_type integer NOT NULL, primary_actor_type character varying NOT NULL, primary_actor_id bigint NOT NULL);
CREATE TABLE agent_bots (id bigserial PRIMARY KEY, name character varying, account_id bigint, bot_config jsonb DEFAULT '{}');
CREATE TABLE agent_bot_inboxes (id bigserial PRIMARY KEY, inbox_id integer, agent_bot_id integer, status integer DEFAULT 0,
    account_id integer);
CREATE TABLE email_templates (id bigserial PRIMARY KEY, name character varying NOT NULL, body text NOT NULL,
    account_id integer, template_type integer DEFAULT 1);
CREATE UNIQUE INDEX index_email_templates_on_name_and_account_id ON email_templates (name, account_id);
CREATE TABLE reporting_events (id bigserial PRIMARY KEY, name character varying, value double precision,
    account_id integer, inbox_id integer, user_id integer, conversation_id integer);
CREATE TABLE webhooks (id bigserial PRIMARY KEY, account_id integer, inbox_id integer, url character varying,
    subscriptions jsonb DEFAULT '["conversation_created"]');
CREATE UNIQUE INDEX index_webhooks_on_account_id_and_url ON webhooks (account_id, url);
ALTER TABLE campaign_messages ADD CONSTRAINT fk_rails_campaigns FOREIGN KEY (campaign_id) REFERENCES campaigns (id);
ALTER TABLE campaign_messages ADD CONSTRAINT fk_rails_contacts FOREIGN KEY (contact_id) REFERENCES contacts (id);
ALTER TABLE inboxes ADD CONSTRAINT fk_rails_portals FOREIGN KEY (portal_id) REFERENCES portals (id);
-- hair_trigger's per-account display id sequences
CREATE FUNCTION accounts_after_insert_row_tr() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    execute format('create sequence IF NOT EXISTS conv_dpid_seq_%s', NEW.id);
    RETURN NULL;
END;
$$;
CREATE TRIGGER accounts_after_insert_row_tr AFTER INSERT ON accounts FOR EACH ROW EXECUTE FUNCTION accounts_after_insert_row_tr();
CREATE FUNCTION camp_dpid_before_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    execute format('create sequence IF NOT EXISTS camp_dpid_seq_%s', NEW.id);
    RETURN NULL;
END;
$$;
CREATE TRIGGER camp_dpid_before_insert AFTER INSERT ON accounts FOR EACH ROW EXECUTE FUNCTION camp_dpid_before_insert();
CREATE FUNCTION conversations_before_insert_row_tr() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.display_id := nextval('conv_dpid_seq_' || NEW.account_id);
    RETURN NEW;
END;
$$;
CREATE TRIGGER conversations_before_insert_row_tr BEFORE INSERT ON conversations FOR EACH ROW EXECUTE FUNCTION conversations_before_insert_row_tr();
CREATE FUNCTION campaigns_before_insert_row_tr() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.display_id := nextval('camp_dpid_seq_' || NEW.account_id);
    RETURN NEW;
END;
$$;
CREATE TRIGGER campaigns_before_insert_row_tr BEFORE INSERT ON campaigns FOR EACH ROW EXECUTE FUNCTION campaigns_before_insert_row_tr();
`

// ChatwootSeed fills ChatwootDDL's tables: accounts 1 and 2, 300 contacts
// (odd ids in account 2, even in account 1), a conversation each, ten
// messages per conversation, a global and an account bot, a default and
// an account email template.
const ChatwootSeed = `INSERT INTO schema_migrations VALUES ('20250816044639');
INSERT INTO accounts (name) VALUES ('Acme'), ('Globex');
INSERT INTO users (name, email, uid) VALUES ('Ann', 'ann@acme.test', 'ann'), ('Bob', 'bob@globex.test', 'bob'), ('Cid', 'cid@both.test', 'cid');
INSERT INTO installation_configs (name) VALUES ('INSTALLATION_NAME');
INSERT INTO platform_apps (name) VALUES ('crm');
INSERT INTO account_users (account_id, user_id, role) VALUES (1,1,1),(2,2,1),(1,3,0),(2,3,0);
INSERT INTO portals (account_id, name, slug) VALUES (1, 'Acme help', 'acme'), (2, 'Globex help', 'globex');
INSERT INTO portals_members VALUES (1, 1), (2, 2), (2, 3);
INSERT INTO channel_web_widgets (website_url, account_id, website_token) VALUES ('acme.test', 1, 'tok-a'), ('globex.test', 2, 'tok-g');
INSERT INTO inboxes (channel_id, account_id, name, channel_type, portal_id) VALUES (1, 1, 'Acme web', 'Channel::WebWidget', 1), (2, 2, 'Globex web', 'Channel::WebWidget', 2);
INSERT INTO inbox_members (user_id, inbox_id) VALUES (1, 1), (3, 1), (2, 2);
INSERT INTO contacts (name, email, account_id) SELECT 'c' || g, 'c' || g || '@x.test', 1 + g % 2 FROM generate_series(1, 300) g;
INSERT INTO contact_inboxes (contact_id, inbox_id, source_id) SELECT id, account_id, 's' || id FROM contacts;
INSERT INTO teams (name, account_id) VALUES ('Acme support', 1), ('Globex sales', 2);
INSERT INTO team_members (team_id, user_id) VALUES (1, 1), (1, 3), (2, 2);
INSERT INTO campaigns (title, message, account_id, inbox_id) VALUES ('spring', 'hi', 1, 1), ('fall', 'hey', 2, 2);
INSERT INTO campaign_messages (campaign_id, contact_id) SELECT 1 + id % 2, id FROM contacts WHERE id <= 40;
INSERT INTO conversations (account_id, inbox_id, contact_id, contact_inbox_id, team_id) SELECT c.account_id, c.account_id, c.id, ci.id, c.account_id FROM contacts c JOIN contact_inboxes ci ON ci.contact_id = c.id;
INSERT INTO messages (content, account_id, inbox_id, conversation_id, message_type, sender_type, sender_id)
    SELECT 'm' || g, cv.account_id, cv.inbox_id, cv.id, g % 2, CASE WHEN g % 2 = 0 THEN 'Contact' ELSE 'User' END, CASE WHEN g % 2 = 0 THEN cv.contact_id ELSE cv.account_id END
    FROM conversations cv CROSS JOIN generate_series(1, 10) g;
INSERT INTO attachments (message_id, account_id) SELECT id, account_id FROM messages WHERE id % 7 = 0;
INSERT INTO labels (title, account_id) VALUES ('vip', 1), ('vip', 2);
INSERT INTO tags (name) VALUES ('vip'), ('billing');
INSERT INTO taggings (tag_id, taggable_type, taggable_id, context) SELECT 1 + id % 2, 'Conversation', id, 'labels' FROM conversations WHERE id % 3 = 0;
INSERT INTO taggings (tag_id, taggable_type, taggable_id, context) SELECT 1, 'Contact', id, 'labels' FROM contacts WHERE id % 7 = 0;
INSERT INTO notifications (account_id, user_id, notification_type, primary_actor_type, primary_actor_id) VALUES (1, 1, 1, 'Conversation', 1), (2, 2, 1, 'Conversation', 2);
INSERT INTO agent_bots (name, account_id) VALUES ('global bot', NULL), ('acme bot', 1);
INSERT INTO agent_bot_inboxes (inbox_id, agent_bot_id, account_id) VALUES (1, 1, 1), (2, 1, 2), (1, 2, 1);
INSERT INTO access_tokens (owner_type, owner_id, token) VALUES ('User', 1, 't1'), ('User', 2, 't2'), ('AgentBot', 1, 't3'), ('PlatformApp', 1, 't4');
INSERT INTO email_templates (name, body, account_id) VALUES ('conversation_assigned', 'default', NULL), ('conversation_assigned', 'acme', 1);
INSERT INTO reporting_events (name, value, account_id, inbox_id, conversation_id) SELECT 'first_response', 1, account_id, inbox_id, id FROM conversations;
INSERT INTO webhooks (account_id, url) VALUES (1, 'https://a.test'), (2, 'https://g.test');
`
