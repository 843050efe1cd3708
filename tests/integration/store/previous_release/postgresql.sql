--
-- PostgreSQL database dump
--


-- Dumped from database version 15.20 (Debian 15.20-0+deb12u1)
-- Dumped by pg_dump version 15.20 (Debian 15.20-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: api_keys; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.api_keys (
    id integer NOT NULL,
    workspace_id integer NOT NULL,
    key_hash character varying(64) NOT NULL,
    key_hint character varying(16) NOT NULL,
    created_at bigint NOT NULL
);


--
-- Name: api_keys_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.api_keys_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: api_keys_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.api_keys_id_seq OWNED BY public.api_keys.id;


--
-- Name: batches; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.batches (
    seq integer NOT NULL,
    id character varying(64) NOT NULL,
    workspace_id integer NOT NULL,
    status character varying(16) NOT NULL,
    total integer NOT NULL,
    processing integer NOT NULL,
    succeeded integer DEFAULT 0 NOT NULL,
    errored integer DEFAULT 0 NOT NULL,
    canceled integer DEFAULT 0 NOT NULL,
    expired integer DEFAULT 0 NOT NULL,
    created_at bigint NOT NULL,
    expires_at bigint NOT NULL,
    archives_at bigint NOT NULL,
    ended_at bigint,
    cancel_initiated_at bigint,
    purged integer DEFAULT 0 NOT NULL,
    idempotency_key character varying(255),
    body_digest character varying(64),
    headers bytea
);


--
-- Name: batches_seq_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.batches_seq_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: batches_seq_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.batches_seq_seq OWNED BY public.batches.seq;


--
-- Name: outcomes; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.outcomes (
    row_id bigint NOT NULL,
    outcome bytea NOT NULL,
    input_tokens integer DEFAULT 0 NOT NULL,
    output_tokens integer DEFAULT 0 NOT NULL
);


--
-- Name: rate_limits; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.rate_limits (
    key character varying(256) NOT NULL,
    state bytea NOT NULL
);


--
-- Name: requests; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.requests (
    id bigint NOT NULL,
    batch_seq integer NOT NULL,
    custom_id character varying(64) NOT NULL,
    model character varying(256) NOT NULL,
    state character varying(16) NOT NULL,
    attempt integer DEFAULT 0 NOT NULL,
    lease_expires_at bigint,
    not_before bigint,
    params bytea NOT NULL,
    submission_id character varying(64)
);


--
-- Name: requests_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.requests_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: requests_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.requests_id_seq OWNED BY public.requests.id;


--
-- Name: submissions; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.submissions (
    id character varying(64) NOT NULL,
    model character varying(256) NOT NULL,
    state character varying(16) NOT NULL,
    upstream_id character varying(128),
    headers bytea,
    request_count integer NOT NULL,
    created_at bigint NOT NULL,
    submitted_at bigint,
    ended_at bigint,
    next_check_at bigint NOT NULL,
    checks integer DEFAULT 0 NOT NULL,
    lease_expires_at bigint,
    cancel_sent_at bigint
);


--
-- Name: webhook_deliveries; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.webhook_deliveries (
    id bigint NOT NULL,
    webhook_id integer NOT NULL,
    batch_id character varying(64) NOT NULL,
    event character varying(64) NOT NULL,
    created_at bigint NOT NULL,
    attempts integer DEFAULT 0 NOT NULL,
    next_attempt_at bigint,
    lease_expires_at bigint,
    delivered_at bigint,
    last_error character varying(500)
);


--
-- Name: webhook_deliveries_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.webhook_deliveries_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: webhook_deliveries_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.webhook_deliveries_id_seq OWNED BY public.webhook_deliveries.id;


--
-- Name: webhooks; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.webhooks (
    id integer NOT NULL,
    workspace_id integer NOT NULL,
    url character varying(2000) NOT NULL,
    secret character varying(200) NOT NULL,
    created_at bigint NOT NULL
);


--
-- Name: webhooks_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.webhooks_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: webhooks_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.webhooks_id_seq OWNED BY public.webhooks.id;


--
-- Name: workspaces; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.workspaces (
    id integer NOT NULL,
    name character varying(200) NOT NULL,
    created_at bigint NOT NULL
);


--
-- Name: workspaces_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.workspaces_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: workspaces_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.workspaces_id_seq OWNED BY public.workspaces.id;


--
-- Name: api_keys id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.api_keys ALTER COLUMN id SET DEFAULT nextval('public.api_keys_id_seq'::regclass);


--
-- Name: batches seq; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.batches ALTER COLUMN seq SET DEFAULT nextval('public.batches_seq_seq'::regclass);


--
-- Name: requests id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.requests ALTER COLUMN id SET DEFAULT nextval('public.requests_id_seq'::regclass);


--
-- Name: webhook_deliveries id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.webhook_deliveries ALTER COLUMN id SET DEFAULT nextval('public.webhook_deliveries_id_seq'::regclass);


--
-- Name: webhooks id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.webhooks ALTER COLUMN id SET DEFAULT nextval('public.webhooks_id_seq'::regclass);


--
-- Name: workspaces id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.workspaces ALTER COLUMN id SET DEFAULT nextval('public.workspaces_id_seq'::regclass);


--
-- Data for Name: api_keys; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.api_keys VALUES (1, 1, '2872d070fadbf40f395bc7cb56a9229c36bdd3442661306f7ccefe401c45f11a', 'sk-by-prev', 1800000000000000);


--
-- Data for Name: batches; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.batches VALUES (1, 'msgbatch_013rA2GWopp2qDzJngdLdnXC', 1, 'ended', 6, 0, 5, 1, 0, 0, 1796229958167125, 1796316358167125, 1798735558167125, 1796229958298488, NULL, 0, NULL, NULL, NULL);
INSERT INTO public.batches VALUES (2, 'msgbatch_016NTkPtcJHkhrjZZ59buYYM', 1, 'in_progress', 1, 1, 0, 0, 0, 0, 1796229958838352, 1796316358838352, 1798735558838352, NULL, NULL, 0, 'k1', '595adb09cec45d84f8bbf0ea5cdc6bd41ed2f48bf06cf6649852766aab900120', NULL);


--
-- Data for Name: outcomes; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.outcomes VALUES (1, '\x7b226f7574636f6d65223a22737563636565646564222c226d657373616765223a7b2274797065223a226d657373616765222c226964223a226d73675f3031737a48326e70364b645533454334445059635747734b222c226d6f64656c223a2273696d222c22636f6e74656e74223a5b7b2274797065223a2274657874222c2274657874223a22627261766f206d696b65206e6f76656d6265722070617061206d696b65206f7363617220666f7874726f7420696e646961222c226369746174696f6e73223a6e756c6c7d5d2c2273746f705f726561736f6e223a226d61785f746f6b656e73222c2273746f705f73657175656e6365223a6e756c6c2c227573616765223a7b22696e7075745f746f6b656e73223a322c226f75747075745f746f6b656e73223a382c2263616368655f6372656174696f6e5f696e7075745f746f6b656e73223a302c2263616368655f726561645f696e7075745f746f6b656e73223a302c2263616368655f6372656174696f6e223a7b22657068656d6572616c5f356d5f696e7075745f746f6b656e73223a302c22657068656d6572616c5f31685f696e7075745f746f6b656e73223a307d2c22736572766963655f74696572223a226261746368227d2c22726f6c65223a22617373697374616e74227d7d', 2, 8);
INSERT INTO public.outcomes VALUES (2, '\x7b226f7574636f6d65223a22737563636565646564222c226d657373616765223a7b2274797065223a226d657373616765222c226964223a226d73675f30315478697659465a645a7365714e52725a664578436442222c226d6f64656c223a2273696d222c22636f6e74656e74223a5b7b2274797065223a2274657874222c2274657874223a22726f6d656f20636861726c6965206c696d6120666f7874726f7420686f74656c20696e64696120616c70686120636861726c6965222c226369746174696f6e73223a6e756c6c7d5d2c2273746f705f726561736f6e223a226d61785f746f6b656e73222c2273746f705f73657175656e6365223a6e756c6c2c227573616765223a7b22696e7075745f746f6b656e73223a322c226f75747075745f746f6b656e73223a382c2263616368655f6372656174696f6e5f696e7075745f746f6b656e73223a302c2263616368655f726561645f696e7075745f746f6b656e73223a302c2263616368655f6372656174696f6e223a7b22657068656d6572616c5f356d5f696e7075745f746f6b656e73223a302c22657068656d6572616c5f31685f696e7075745f746f6b656e73223a307d2c22736572766963655f74696572223a226261746368227d2c22726f6c65223a22617373697374616e74227d7d', 2, 8);
INSERT INTO public.outcomes VALUES (3, '\x7b226f7574636f6d65223a22737563636565646564222c226d657373616765223a7b2274797065223a226d657373616765222c226964223a226d73675f3031354e7a42653464736b4e79767959456e704d76506b4c222c226d6f64656c223a2273696d222c22636f6e74656e74223a5b7b2274797065223a2274657874222c2274657874223a226563686f20696e64696120696e646961206b696c6f206b696c6f20627261766f20666f7874726f7420636861726c6965222c226369746174696f6e73223a6e756c6c7d5d2c2273746f705f726561736f6e223a226d61785f746f6b656e73222c2273746f705f73657175656e6365223a6e756c6c2c227573616765223a7b22696e7075745f746f6b656e73223a322c226f75747075745f746f6b656e73223a382c2263616368655f6372656174696f6e5f696e7075745f746f6b656e73223a302c2263616368655f726561645f696e7075745f746f6b656e73223a302c2263616368655f6372656174696f6e223a7b22657068656d6572616c5f356d5f696e7075745f746f6b656e73223a302c22657068656d6572616c5f31685f696e7075745f746f6b656e73223a307d2c22736572766963655f74696572223a226261746368227d2c22726f6c65223a22617373697374616e74227d7d', 2, 8);
INSERT INTO public.outcomes VALUES (4, '\x7b226f7574636f6d65223a22737563636565646564222c226d657373616765223a7b2274797065223a226d657373616765222c226964223a226d73675f3031515a665859314e73506e515836716455674b55544657222c226d6f64656c223a2273696d222c22636f6e74656e74223a5b7b2274797065223a2274657874222c2274657874223a2270617061206b696c6f20726f6d656f20686f74656c20686f74656c20676f6c66206e6f76656d626572206b696c6f222c226369746174696f6e73223a6e756c6c7d5d2c2273746f705f726561736f6e223a226d61785f746f6b656e73222c2273746f705f73657175656e6365223a6e756c6c2c227573616765223a7b22696e7075745f746f6b656e73223a322c226f75747075745f746f6b656e73223a382c2263616368655f6372656174696f6e5f696e7075745f746f6b656e73223a302c2263616368655f726561645f696e7075745f746f6b656e73223a302c2263616368655f6372656174696f6e223a7b22657068656d6572616c5f356d5f696e7075745f746f6b656e73223a302c22657068656d6572616c5f31685f696e7075745f746f6b656e73223a307d2c22736572766963655f74696572223a226261746368227d2c22726f6c65223a22617373697374616e74227d7d', 2, 8);
INSERT INTO public.outcomes VALUES (5, '\x7b226f7574636f6d65223a22737563636565646564222c226d657373616765223a7b2274797065223a226d657373616765222c226964223a226d73675f30314d626e43473251765a367a31684551657a367a507a31222c226d6f64656c223a2273696d222c22636f6e74656e74223a5b7b2274797065223a2274657874222c2274657874223a22636861726c6965206d696b65206b696c6f20726f6d656f206a756c696574206e6f76656d626572206b696c6f206e6f76656d626572222c226369746174696f6e73223a6e756c6c7d5d2c2273746f705f726561736f6e223a226d61785f746f6b656e73222c2273746f705f73657175656e6365223a6e756c6c2c227573616765223a7b22696e7075745f746f6b656e73223a322c226f75747075745f746f6b656e73223a382c2263616368655f6372656174696f6e5f696e7075745f746f6b656e73223a302c2263616368655f726561645f696e7075745f746f6b656e73223a302c2263616368655f6372656174696f6e223a7b22657068656d6572616c5f356d5f696e7075745f746f6b656e73223a302c22657068656d6572616c5f31685f696e7075745f746f6b656e73223a307d2c22736572766963655f74696572223a226261746368227d2c22726f6c65223a22617373697374616e74227d7d', 2, 8);
INSERT INTO public.outcomes VALUES (6, '\x7b226f7574636f6d65223a226572726f726564222c2274797065223a226e6f745f666f756e645f6572726f72222c226d657373616765223a226d6f64656c3a206e6f7065222c22726571756573745f6964223a227265715f3031356a42625a797651446b397538663556664470556447227d', 0, 0);


--
-- Data for Name: rate_limits; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.rate_limits VALUES ('model:sim', '\x7b2261745f7573223a313739363232393935383235353338362c226275636b657473223a7b7d2c22666163746f72223a312e302c226375745f61745f7573223a302c227061757365645f756e74696c5f7573223a307d');


--
-- Data for Name: requests; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.requests VALUES (1, 1, 't0', 'sim', 'succeeded', 1, NULL, NULL, '\x7b226d6f64656c223a2273696d222c226d61785f746f6b656e73223a382c226d65737361676573223a5b7b22726f6c65223a2275736572222c22636f6e74656e74223a227469636b65742030227d5d7d', NULL);
INSERT INTO public.requests VALUES (3, 1, 't2', 'sim', 'succeeded', 1, NULL, NULL, '\x7b226d6f64656c223a2273696d222c226d61785f746f6b656e73223a382c226d65737361676573223a5b7b22726f6c65223a2275736572222c22636f6e74656e74223a227469636b65742032227d5d7d', NULL);
INSERT INTO public.requests VALUES (5, 1, 't4', 'sim', 'succeeded', 1, NULL, NULL, '\x7b226d6f64656c223a2273696d222c226d61785f746f6b656e73223a382c226d65737361676573223a5b7b22726f6c65223a2275736572222c22636f6e74656e74223a227469636b65742034227d5d7d', NULL);
INSERT INTO public.requests VALUES (4, 1, 't3', 'sim', 'succeeded', 1, NULL, NULL, '\x7b226d6f64656c223a2273696d222c226d61785f746f6b656e73223a382c226d65737361676573223a5b7b22726f6c65223a2275736572222c22636f6e74656e74223a227469636b65742033227d5d7d', NULL);
INSERT INTO public.requests VALUES (2, 1, 't1', 'sim', 'succeeded', 1, NULL, NULL, '\x7b226d6f64656c223a2273696d222c226d61785f746f6b656e73223a382c226d65737361676573223a5b7b22726f6c65223a2275736572222c22636f6e74656e74223a227469636b65742031227d5d7d', NULL);
INSERT INTO public.requests VALUES (6, 1, 'bad', 'nope', 'errored', 1, NULL, NULL, '\x7b226d6f64656c223a226e6f7065222c226d61785f746f6b656e73223a382c226d65737361676573223a5b7b22726f6c65223a2275736572222c22636f6e74656e74223a2278227d5d7d', NULL);
INSERT INTO public.requests VALUES (7, 2, 'q', 'sim', 'queued', 0, NULL, NULL, '\x7b226d6f64656c223a2273696d222c226d61785f746f6b656e73223a382c226d65737361676573223a5b7b22726f6c65223a2275736572222c22636f6e74656e74223a22717565756564227d5d7d', NULL);


--
-- Data for Name: submissions; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: webhook_deliveries; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: webhooks; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: workspaces; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.workspaces VALUES (1, 'acme', 1800000000000000);


--
-- Name: api_keys_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.api_keys_id_seq', 1, true);


--
-- Name: batches_seq_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.batches_seq_seq', 2, true);


--
-- Name: requests_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.requests_id_seq', 7, true);


--
-- Name: webhook_deliveries_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.webhook_deliveries_id_seq', 1, false);


--
-- Name: webhooks_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.webhooks_id_seq', 1, false);


--
-- Name: workspaces_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.workspaces_id_seq', 1, true);


--
-- Name: api_keys api_keys_key_hash_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.api_keys
    ADD CONSTRAINT api_keys_key_hash_key UNIQUE (key_hash);


--
-- Name: api_keys api_keys_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.api_keys
    ADD CONSTRAINT api_keys_pkey PRIMARY KEY (id);


--
-- Name: batches batches_id_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.batches
    ADD CONSTRAINT batches_id_key UNIQUE (id);


--
-- Name: batches batches_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.batches
    ADD CONSTRAINT batches_pkey PRIMARY KEY (seq);


--
-- Name: outcomes outcomes_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.outcomes
    ADD CONSTRAINT outcomes_pkey PRIMARY KEY (row_id);


--
-- Name: rate_limits rate_limits_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.rate_limits
    ADD CONSTRAINT rate_limits_pkey PRIMARY KEY (key);


--
-- Name: requests requests_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.requests
    ADD CONSTRAINT requests_pkey PRIMARY KEY (id);


--
-- Name: submissions submissions_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.submissions
    ADD CONSTRAINT submissions_pkey PRIMARY KEY (id);


--
-- Name: batches uq_batches_idempotency_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.batches
    ADD CONSTRAINT uq_batches_idempotency_key UNIQUE (workspace_id, idempotency_key);


--
-- Name: requests uq_requests_batch_custom_id; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.requests
    ADD CONSTRAINT uq_requests_batch_custom_id UNIQUE (batch_seq, custom_id);


--
-- Name: webhook_deliveries webhook_deliveries_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.webhook_deliveries
    ADD CONSTRAINT webhook_deliveries_pkey PRIMARY KEY (id);


--
-- Name: webhooks webhooks_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.webhooks
    ADD CONSTRAINT webhooks_pkey PRIMARY KEY (id);


--
-- Name: workspaces workspaces_name_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.workspaces
    ADD CONSTRAINT workspaces_name_key UNIQUE (name);


--
-- Name: workspaces workspaces_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.workspaces
    ADD CONSTRAINT workspaces_pkey PRIMARY KEY (id);


--
-- Name: ix_batches_open; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_batches_open ON public.batches USING btree (status) WHERE ((status)::text <> 'ended'::text);


--
-- Name: ix_batches_workspace_seq; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_batches_workspace_seq ON public.batches USING btree (workspace_id, seq);


--
-- Name: ix_requests_leases; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_requests_leases ON public.requests USING btree (lease_expires_at) WHERE ((state)::text = 'running'::text);


--
-- Name: ix_requests_queued; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_requests_queued ON public.requests USING btree (model, id) WHERE ((state)::text = 'queued'::text);


--
-- Name: ix_requests_submission; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_requests_submission ON public.requests USING btree (submission_id) WHERE (submission_id IS NOT NULL);


--
-- Name: ix_submissions_open; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_submissions_open ON public.submissions USING btree (model, next_check_at) WHERE ((state)::text = ANY ((ARRAY['submitting'::character varying, 'submitted'::character varying])::text[]));


--
-- Name: ix_webhook_deliveries_due; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_webhook_deliveries_due ON public.webhook_deliveries USING btree (next_attempt_at) WHERE (next_attempt_at IS NOT NULL);


--
-- Name: api_keys api_keys_workspace_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.api_keys
    ADD CONSTRAINT api_keys_workspace_id_fkey FOREIGN KEY (workspace_id) REFERENCES public.workspaces(id);


--
-- Name: batches batches_workspace_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.batches
    ADD CONSTRAINT batches_workspace_id_fkey FOREIGN KEY (workspace_id) REFERENCES public.workspaces(id);


--
-- Name: outcomes outcomes_row_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.outcomes
    ADD CONSTRAINT outcomes_row_id_fkey FOREIGN KEY (row_id) REFERENCES public.requests(id);


--
-- Name: requests requests_batch_seq_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.requests
    ADD CONSTRAINT requests_batch_seq_fkey FOREIGN KEY (batch_seq) REFERENCES public.batches(seq);


--
-- Name: webhook_deliveries webhook_deliveries_webhook_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.webhook_deliveries
    ADD CONSTRAINT webhook_deliveries_webhook_id_fkey FOREIGN KEY (webhook_id) REFERENCES public.webhooks(id) ON DELETE CASCADE;


--
-- Name: webhooks webhooks_workspace_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.webhooks
    ADD CONSTRAINT webhooks_workspace_id_fkey FOREIGN KEY (workspace_id) REFERENCES public.workspaces(id);


--
-- PostgreSQL database dump complete
--


