-- Every object of the installed crdt extension, as canonical text: one row per object,
-- (object, definition), sorted. Two databases with the same rows have the same extension —
-- tests/upgrade.rs compares an upgraded install with a fresh one this way. No OIDs: objects
-- are named (schema-qualified, since search_path is empty) and referenced by name.
--
-- By hand: psql -X -At -F ' :: ' -d DB -f tests/replication/sql/extension_objects.sql
SET search_path = '';

WITH extension AS (
    SELECT e.oid FROM pg_extension e WHERE e.extname = 'crdt'
), members AS (
    SELECT d.classid, d.objid, d.objsubid
    FROM pg_depend d JOIN extension ON d.refobjid = extension.oid
    WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
), objects (object, definition) AS (
    -- Every member as PostgreSQL names it, with its comment.
    SELECT 'member ' || pg_describe_object(m.classid, m.objid, m.objsubid),
           coalesce('comment ' || quote_literal(c.description), 'no comment')
    FROM members m
    LEFT JOIN pg_description c
           ON (c.classoid, c.objoid, c.objsubid) = (m.classid, m.objid, m.objsubid)

    UNION ALL
    -- The extension itself and its schema (the schema is not a member when CREATE EXTENSION
    -- made it, but its privileges are part of the install).
    SELECT 'extension ' || e.extname,
           concat_ws(' | ',
               'version ' || e.extversion,
               'schema ' || e.extnamespace::regnamespace,
               'relocatable ' || e.extrelocatable,
               'configuration tables ' || coalesce(e.extconfig::regclass[]::text, '-'),
               'configuration conditions ' || coalesce(e.extcondition::text, '-'))
    FROM pg_extension e JOIN extension ON e.oid = extension.oid
    UNION ALL
    SELECT 'schema ' || quote_ident(n.nspname),
           concat_ws(' | ',
               'owner ' || pg_get_userbyid(n.nspowner),
               'acl ' || coalesce(n.nspacl::text, 'default'),
               coalesce('comment ' || quote_literal(obj_description(n.oid, 'pg_namespace')), 'no comment'))
    FROM pg_namespace n JOIN pg_extension e ON e.extnamespace = n.oid
    WHERE e.extname = 'crdt'

    UNION ALL
    -- Functions, procedures and aggregates: signature, result, every attribute, and what runs
    -- (the C symbol and library, or the body).
    SELECT 'function ' || p.oid::regprocedure,
           concat_ws(' | ',
               'kind ' || p.prokind::text,
               'arguments (' || pg_get_function_arguments(p.oid) || ')',
               'returns ' || coalesce(pg_get_function_result(p.oid), '-'),
               CASE p.provolatile WHEN 'i' THEN 'immutable' WHEN 's' THEN 'stable' ELSE 'volatile' END,
               CASE WHEN p.proisstrict THEN 'strict' ELSE 'called on null input' END,
               'parallel ' || CASE p.proparallel WHEN 's' THEN 'safe' WHEN 'r' THEN 'restricted' ELSE 'unsafe' END,
               CASE WHEN p.prosecdef THEN 'security definer' ELSE 'security invoker' END,
               CASE WHEN p.proleakproof THEN 'leakproof' ELSE 'not leakproof' END,
               'cost ' || p.procost,
               'rows ' || p.prorows,
               'support ' || p.prosupport::regprocedure,
               'config ' || coalesce(p.proconfig::text, '-'),
               'language ' || l.lanname,
               CASE WHEN l.lanname IN ('c', 'internal')
                    THEN 'symbol ' || coalesce(p.probin || ':', '') || p.prosrc
                    ELSE 'body ' || coalesce(pg_get_function_sqlbody(p.oid), quote_literal(p.prosrc))
               END,
               'owner ' || pg_get_userbyid(p.proowner),
               'acl ' || coalesce(p.proacl::text, 'default'))
    FROM pg_proc p
    JOIN members m ON m.classid = 'pg_proc'::regclass AND m.objid = p.oid
    JOIN pg_language l ON l.oid = p.prolang

    UNION ALL
    SELECT 'aggregate ' || a.aggfnoid::oid::regprocedure,
           concat_ws(' | ',
               'kind ' || a.aggkind::text,
               'direct arguments ' || a.aggnumdirectargs,
               'sfunc ' || a.aggtransfn::oid::regprocedure,
               'stype ' || format_type(a.aggtranstype, NULL),
               'sspace ' || a.aggtransspace,
               'finalfunc ' || a.aggfinalfn::oid::regprocedure,
               'finalfunc_extra ' || a.aggfinalextra,
               'finalfunc_modify ' || a.aggfinalmodify::text,
               'combinefunc ' || a.aggcombinefn::oid::regprocedure,
               'serialfunc ' || a.aggserialfn::oid::regprocedure,
               'deserialfunc ' || a.aggdeserialfn::oid::regprocedure,
               'msfunc ' || a.aggmtransfn::oid::regprocedure,
               'minvfunc ' || a.aggminvtransfn::oid::regprocedure,
               'mfinalfunc ' || a.aggmfinalfn::oid::regprocedure,
               'mfinalfunc_extra ' || a.aggmfinalextra,
               'mfinalfunc_modify ' || a.aggmfinalmodify::text,
               'mstype ' || format_type(a.aggmtranstype, NULL),
               'msspace ' || a.aggmtransspace,
               'sortop ' || a.aggsortop::regoperator,
               'initcond ' || coalesce(quote_literal(a.agginitval), '-'),
               'minitcond ' || coalesce(quote_literal(a.aggminitval), '-'))
    FROM pg_aggregate a
    JOIN members m ON m.classid = 'pg_proc'::regclass AND m.objid = a.aggfnoid

    UNION ALL
    SELECT 'type ' || format_type(t.oid, NULL),
           concat_ws(' | ',
               'typtype ' || t.typtype::text,
               'length ' || t.typlen,
               'by value ' || t.typbyval,
               'category ' || t.typcategory::text,
               'preferred ' || t.typispreferred,
               'delimiter ' || t.typdelim::text,
               'input ' || t.typinput::oid::regprocedure,
               'output ' || t.typoutput::oid::regprocedure,
               'receive ' || t.typreceive::oid::regprocedure,
               'send ' || t.typsend::oid::regprocedure,
               'typmod_in ' || t.typmodin::oid::regprocedure,
               'typmod_out ' || t.typmodout::oid::regprocedure,
               'analyze ' || t.typanalyze::oid::regprocedure,
               'subscript ' || t.typsubscript::oid::regprocedure,
               'element ' || format_type(t.typelem, NULL),
               'array ' || format_type(t.typarray, NULL),
               'storage ' || t.typstorage::text,
               'alignment ' || t.typalign::text,
               'not null ' || t.typnotnull,
               'base type ' || format_type(t.typbasetype, NULL),
               'typmod ' || t.typtypmod,
               'dimensions ' || t.typndims,
               'collation ' || coalesce((SELECT quote_ident(co.collname) FROM pg_collation co
                                         WHERE co.oid = t.typcollation), '-'),
               'default ' || coalesce(quote_literal(t.typdefault), '-'),
               'owner ' || pg_get_userbyid(t.typowner),
               'acl ' || coalesce(t.typacl::text, 'default'))
    FROM pg_type t
    JOIN members m ON m.classid = 'pg_type'::regclass AND m.objid = t.oid

    UNION ALL
    SELECT 'operator ' || o.oid::regoperator,
           concat_ws(' | ',
               'kind ' || o.oprkind::text,
               'returns ' || format_type(o.oprresult, NULL),
               'function ' || o.oprcode::oid::regprocedure,
               'commutator ' || o.oprcom::regoperator,
               'negator ' || o.oprnegate::regoperator,
               'restrict ' || o.oprrest::oid::regprocedure,
               'join ' || o.oprjoin::oid::regprocedure,
               'merges ' || o.oprcanmerge,
               'hashes ' || o.oprcanhash,
               'owner ' || pg_get_userbyid(o.oprowner))
    FROM pg_operator o
    JOIN members m ON m.classid = 'pg_operator'::regclass AND m.objid = o.oid

    UNION ALL
    SELECT 'cast (' || format_type(c.castsource, NULL) || ' AS ' || format_type(c.casttarget, NULL) || ')',
           concat_ws(' | ',
               'function ' || c.castfunc::regprocedure,
               'context ' || CASE c.castcontext WHEN 'e' THEN 'explicit' WHEN 'a' THEN 'assignment'
                                                ELSE 'implicit' END,
               'method ' || c.castmethod::text)
    FROM pg_cast c
    JOIN members m ON m.classid = 'pg_cast'::regclass AND m.objid = c.oid

    UNION ALL
    SELECT 'operator family ' || quote_ident(n.nspname) || '.' || quote_ident(f.opfname)
               || ' using ' || am.amname,
           concat_ws(' | ',
               'owner ' || pg_get_userbyid(f.opfowner),
               'operators ' || coalesce((
                   SELECT string_agg(ao.amopstrategy || ' ' || ao.amopopr::regoperator
                                     || ' ' || ao.amoppurpose::text
                                     || coalesce(' order by ' || (SELECT sf.opfname FROM pg_opfamily sf
                                                                  WHERE sf.oid = ao.amopsortfamily), ''),
                                     ', ' ORDER BY ao.amopstrategy, ao.amopopr::regoperator::text)
                   FROM pg_amop ao WHERE ao.amopfamily = f.oid), '-'),
               'functions ' || coalesce((
                   SELECT string_agg(ap.amprocnum || ' (' || format_type(ap.amproclefttype, NULL)
                                     || ', ' || format_type(ap.amprocrighttype, NULL) || ') '
                                     || ap.amproc::oid::regprocedure,
                                     ', ' ORDER BY ap.amprocnum, ap.amproc::oid::regprocedure::text)
                   FROM pg_amproc ap WHERE ap.amprocfamily = f.oid), '-'))
    FROM pg_opfamily f
    JOIN members m ON m.classid = 'pg_opfamily'::regclass AND m.objid = f.oid
    JOIN pg_namespace n ON n.oid = f.opfnamespace
    JOIN pg_am am ON am.oid = f.opfmethod
    UNION ALL
    SELECT 'operator class ' || quote_ident(n.nspname) || '.' || quote_ident(c.opcname)
               || ' using ' || am.amname,
           concat_ws(' | ',
               'for type ' || format_type(c.opcintype, NULL),
               'default ' || c.opcdefault,
               'family ' || (SELECT quote_ident(fn.nspname) || '.' || quote_ident(f.opfname)
                             FROM pg_opfamily f JOIN pg_namespace fn ON fn.oid = f.opfnamespace
                             WHERE f.oid = c.opcfamily),
               'storage ' || format_type(c.opckeytype, NULL),
               'owner ' || pg_get_userbyid(c.opcowner))
    FROM pg_opclass c
    JOIN members m ON m.classid = 'pg_opclass'::regclass AND m.objid = c.oid
    JOIN pg_namespace n ON n.oid = c.opcnamespace
    JOIN pg_am am ON am.oid = c.opcmethod

    UNION ALL
    -- Tables, views and sequences of the extension, with their columns.
    SELECT 'relation ' || r.oid::regclass,
           concat_ws(' | ',
               'kind ' || r.relkind::text,
               'columns ' || coalesce((
                   SELECT string_agg(quote_ident(a.attname) || ' ' || format_type(a.atttypid, a.atttypmod)
                                     || coalesce(' collate ' || (SELECT quote_ident(co.collname) FROM pg_collation co
                                                                 WHERE co.oid = a.attcollation), '')
                                     || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
                                     || CASE WHEN a.attgenerated <> '' THEN ' generated' ELSE '' END
                                     || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), ''),
                                     ', ' ORDER BY a.attnum)
                   FROM pg_attribute a
                   LEFT JOIN pg_attrdef d ON (d.adrelid, d.adnum) = (a.attrelid, a.attnum)
                   WHERE a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped), '-'),
               -- Indexes, constraints and triggers by name, as PostgreSQL writes them back.
               'indexes ' || coalesce((
                   SELECT string_agg(pg_get_indexdef(i.indexrelid), '; ' ORDER BY i.indexrelid::regclass::text)
                   FROM pg_index i WHERE i.indrelid = r.oid), '-'),
               'constraints ' || coalesce((
                   SELECT string_agg(quote_ident(c.conname) || ' ' || pg_get_constraintdef(c.oid), '; '
                                     ORDER BY c.conname)
                   FROM pg_constraint c WHERE c.conrelid = r.oid), '-'),
               'triggers ' || coalesce((
                   SELECT string_agg(pg_get_triggerdef(t.oid) || ' enabled ' || t.tgenabled::text, '; '
                                     ORDER BY t.tgname)
                   FROM pg_trigger t WHERE t.tgrelid = r.oid AND NOT t.tgisinternal), '-'),
               'replica identity ' || r.relreplident::text,
               CASE WHEN r.relkind IN ('v', 'm') THEN 'query ' || pg_get_viewdef(r.oid) END,
               'options ' || coalesce(r.reloptions::text, '-'),
               'owner ' || pg_get_userbyid(r.relowner),
               'acl ' || coalesce(r.relacl::text, 'default'))
    FROM pg_class r
    JOIN members m ON m.classid = 'pg_class'::regclass AND m.objid = r.oid AND m.objsubid = 0

    UNION ALL
    SELECT 'event trigger ' || quote_ident(t.evtname),
           concat_ws(' | ',
               'event ' || t.evtevent::text,
               'function ' || t.evtfoid::regprocedure,
               'enabled ' || t.evtenabled::text,
               'tags ' || coalesce(t.evttags::text, '-'))
    FROM pg_event_trigger t
    JOIN members m ON m.classid = 'pg_event_trigger'::regclass AND m.objid = t.oid
)
SELECT object, definition FROM objects ORDER BY object COLLATE "C", definition COLLATE "C";
