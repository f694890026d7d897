// easgate web console.
//
// Why it is built this way: a small single-page app over the same REST API (/api/v1) the CLI's
// remote users call, so the console adds no second way to change anything: the server
// validates, audits and role-checks every call, and the page only offers what the session's
// role may do. One plain ES module, no framework and no build step, so a small team can read
// and change it with a text editor and the server can embed the three files in its binary.
// The page runs under a strict Content-Security-Policy, so the DOM is built with
// createElement and textContent only (the h() helper below): no innerHTML, no inline style or
// script, and a string from the server can never become markup.
//
// Layout of this file: helpers (DOM, messages, forms, tables), the API client, the session,
// the shell and hash router, shared widgets, then one section per page.

const API = '/api/v1';
const APP_NAME = 'easgate console';
const POLL_MS = 2000;
const PAGE_SIZE = 50;

const state = {
  /** The signed-in session: {name, role, permissions, csrf}; null when signed out. */
  session: null,
  /** What to do when the current page is left (stop polling, …). */
  leaving: [],
};

// ---------------------------------------------------------------------------------------------
// DOM helpers

/** An element: h('a', {href: '#/x', class: 'c'}, 'text', child, [more]). `on…` attributes
 *  that are functions become event listeners; false/null/undefined attributes are left out;
 *  `value` is set as a property after the children (so a select can pick an option). */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  let value;
  for (const [key, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (key === 'value') value = v;
    else if (key.startsWith('on') && typeof v === 'function') {
      el.addEventListener(key.slice(2).toLowerCase(), v);
    } else el.setAttribute(key, v === true ? '' : String(v));
  }
  add(el, children);
  if (value !== undefined) el.value = String(value);
  return el;
}

/** Append children (nodes, strings, numbers, nested arrays; null and false are skipped). */
function add(parent, children) {
  for (const child of [children].flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    parent.append(child instanceof Node ? child : String(child));
  }
  return parent;
}

/** Replace the children of `parent` (same rules as add()). */
function fill(parent, ...children) {
  parent.replaceChildren();
  return add(parent, children);
}

let idCounter = 0;
function newId(prefix = 'id') {
  idCounter += 1;
  return `${prefix}-${idCounter}`;
}

const byId = (id) => document.getElementById(id);
const code = (text) => (text ? h('code', {}, text) : null);
const seg = encodeURIComponent;

/** A value for a table cell or definition: a dash when there is nothing. */
function shown(value) {
  if (value === null || value === undefined || value === '') return '—';
  if (Array.isArray(value) && value.length === 0) return '—';
  if (typeof value === 'boolean') return value ? 'yes' : 'no';
  return value;
}

/** A list of words as one text ("a, b"); '' for none. */
function joined(list) {
  return Array.isArray(list) ? list.join(', ') : (list ?? '');
}

/** An RFC 3339 time as local time in a <time datetime>, or `missing`. */
function when(rfc3339, missing = '—') {
  if (!rfc3339) return missing;
  const date = new Date(rfc3339);
  if (Number.isNaN(date.getTime())) return String(rfc3339);
  return h('time', {datetime: rfc3339, title: rfc3339}, date.toLocaleString());
}

const BADGE_KINDS = {
  ok: ['allow', 'allowed', 'valid', 'ok', 'pass', 'fresh', 'enrolled', 'active'],
  bad: ['block', 'blocked', 'refuse', 'revoked', 'fail', 'stale', 'retired', 'wiped', 'disabled'],
  warn: ['quarantine', 'quarantined', 'expired', 'pending', 'suspect'],
};

/** A word in a badge; its colour follows its meaning, and the word itself says it too. */
function badge(word) {
  if (word === null || word === undefined || word === '') return '—';
  const lower = String(word).toLowerCase();
  const kind = Object.keys(BADGE_KINDS).find((k) => BADGE_KINDS[k].includes(lower)) ?? 'neutral';
  return h('span', {class: `badge badge-${kind}`}, String(word));
}

/** A definition list of [term, value] pairs (falsy pairs are skipped). */
function props(pairs) {
  return h(
    'dl',
    {class: 'props'},
    pairs.filter(Boolean).map(([term, value]) => h('div', {}, h('dt', {}, term), h('dd', {}, shown(value)))),
  );
}

/** A table in a keyboard-scrollable region. columns: [{title, cell(row), className?}]. */
function dataTable(label, columns, rows) {
  return h(
    'div',
    {class: 'table-wrap', role: 'region', 'aria-label': label, tabindex: '0'},
    h(
      'table',
      {},
      h('caption', {}, label),
      h('thead', {}, h('tr', {}, columns.map((c) => h('th', {scope: 'col'}, c.title)))),
      h(
        'tbody',
        {},
        rows.map((row) => h('tr', {}, columns.map((c) => h('td', {class: c.className}, shown(c.cell(row)))))),
      ),
    ),
  );
}

/** A <section> with a heading. */
function section(title, {level = 2, className = 'panel'} = {}, ...children) {
  return h('section', {class: className}, h(`h${level}`, {tabindex: '-1'}, title), children);
}

// ---------------------------------------------------------------------------------------------
// Messages: a status (role=status) and an error (role=alert) beside each form or action.
// Both stay hidden while empty, so only messages that say something are found.

function messageBox(role) {
  return h('p', {role, class: role === 'alert' ? 'msg msg-error' : 'msg msg-ok', hidden: true});
}

function say(box, text) {
  box.textContent = text ?? '';
  box.hidden = !text;
}

function messages() {
  const status = messageBox('status');
  const alert = messageBox('alert');
  return {
    nodes: [alert, status],
    ok(text) {
      say(alert, '');
      say(status, text);
    },
    fail(err) {
      if (err instanceof SessionEnded) return;
      say(status, '');
      say(alert, describe(err));
    },
    clear() {
      say(alert, '');
      say(status, '');
    },
  };
}

/** What went wrong, in words for the page. */
function describe(err) {
  if (err instanceof ApiError) return err.message;
  return `Unexpected error in the console: ${err?.message ?? err}`;
}

/** An error in place of content that could not load, with a way to try again. */
function loadError(err, retry) {
  return h(
    'div',
    {},
    h('p', {role: 'alert', class: 'msg msg-error'}, describe(err)),
    retry ? h('button', {type: 'button', class: 'secondary', onclick: retry}, 'Try again') : null,
  );
}

/** Fill `box` from `load()` through `render(data)`: "Loading…" first, an error on failure. */
async function loadInto(box, load, render) {
  fill(box, h('p', {class: 'muted'}, 'Loading…'));
  try {
    const data = await load();
    fill(box, ...[render(data)].flat().filter(Boolean));
  } catch (err) {
    if (err instanceof SessionEnded) return;
    fill(box, loadError(err, () => loadInto(box, load, render)));
  }
}

// ---------------------------------------------------------------------------------------------
// Form helpers

/** A labelled control (the label's `for` names the control); an optional hint describes it. */
function field(label, control, hint) {
  if (!control.id) control.id = newId('f');
  const wrap = h('div', {class: 'field'}, h('label', {for: control.id}, label), control);
  if (hint) {
    const hintId = newId('hint');
    control.setAttribute('aria-describedby', hintId);
    wrap.append(h('span', {id: hintId, class: 'hint'}, hint));
  }
  return wrap;
}

function textInput(name, attrs = {}) {
  return h('input', {type: 'text', name, autocomplete: 'off', spellcheck: 'false', ...attrs});
}

/** A select; options are values or [value, label] pairs. */
function selectInput(name, options, attrs = {}) {
  return h(
    'select',
    {name, ...attrs},
    options.map((o) => {
      const [value, label] = Array.isArray(o) ? o : [o, o];
      return h('option', {value}, label);
    }),
  );
}

/** Checkboxes in a fieldset named by its legend; options are [value, label] pairs. */
function checkGroup(legend, name, options) {
  return h(
    'fieldset',
    {},
    h('legend', {}, legend),
    h(
      'div',
      {class: 'checks'},
      options.map(([value, label]) => {
        const id = newId('c');
        return h('label', {for: id}, h('input', {type: 'checkbox', id, name, value}), label);
      }),
    ),
  );
}

const formText = (data, name) => String(data.get(name) ?? '').trim();
const formOptional = (data, name) => formText(data, name) || undefined;
const splitList = (text) => text.split(/[,\n]/).map((s) => s.trim()).filter(Boolean);

function formNumber(data, name) {
  const text = formText(data, name);
  return text === '' ? undefined : Number(text);
}

/** Run `work` for a control at most once at a time, marking it busy meanwhile. (Busy, not
 *  disabled: a disabled button drops the keyboard focus.) */
function guarded(control, work) {
  let busy = false;
  return async (...args) => {
    if (busy) return;
    busy = true;
    control.setAttribute('aria-disabled', 'true');
    try {
      await work(...args);
    } finally {
      busy = false;
      control.removeAttribute('aria-disabled');
    }
  };
}

/** A form named `label` that runs `run(formData, form)` on submit. A string `run` returns is
 *  shown as its status; an error as its alert. */
function actionForm({label, submit, fields, run, layout = 'form-grid', buttonClass}) {
  const msg = messages();
  const button = h('button', {type: 'submit', class: buttonClass}, submit);
  const form = h(
    'form',
    {'aria-label': label},
    h('div', {class: layout}, fields, layout === 'filters' ? h('div', {class: 'actions'}, button) : null),
    layout === 'filters' ? null : h('div', {class: 'actions'}, button),
    msg.nodes,
  );
  const submitted = guarded(button, async () => {
    msg.clear();
    try {
      const done = await run(new FormData(form), form);
      if (typeof done === 'string') msg.ok(done);
    } catch (err) {
      msg.fail(err);
    }
  });
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    submitted();
  });
  return {form, msg};
}

/** A button that runs `run()` once at a time. */
function actionButton(text, run, attrs = {}) {
  const button = h('button', {type: 'button', ...attrs}, text);
  button.addEventListener('click', guarded(button, run));
  return button;
}

/** A button for what cannot be undone: the first press turns it into "Confirm …" (and says
 *  so in `msg`), the second does it. Leaving it disarms it. */
function confirmButton({text, confirmText, label, confirmLabel, explain, msg, run, className = 'danger'}) {
  const button = h('button', {type: 'button', class: className, 'aria-label': label}, text);
  let armed = false;
  const arm = (on) => {
    armed = on;
    button.textContent = on ? confirmText : text;
    if (label) button.setAttribute('aria-label', on ? confirmLabel : label);
  };
  const go = guarded(button, async () => {
    if (!armed) {
      arm(true);
      msg?.ok(explain);
      return;
    }
    try {
      msg?.clear();
      await run();
    } finally {
      arm(false);
    }
  });
  button.addEventListener('click', go);
  button.addEventListener('blur', () => {
    if (armed && button.getAttribute('aria-disabled') !== 'true') {
      arm(false);
      msg?.clear();
    }
  });
  return button;
}

// ---------------------------------------------------------------------------------------------
// API client

/** A failed call: `message` is the problem's detail, `problem` the whole problem document. */
class ApiError extends Error {
  constructor(status, message, problem = null) {
    super(message);
    this.status = status;
    this.problem = problem;
  }
}

/** The session ended (401): the sign-in form is already shown; callers just stop. */
class SessionEnded extends Error {}

function query(params) {
  const q = new URLSearchParams();
  for (const [key, value] of Object.entries(params ?? {})) {
    if (value !== undefined && value !== null && value !== '') q.set(key, String(value));
  }
  const text = q.toString();
  return text ? `?${text}` : '';
}

async function problemOf(res) {
  let problem = null;
  if ((res.headers.get('Content-Type') ?? '').includes('json')) {
    try {
      problem = await res.json();
    } catch {
      problem = null;
    }
  }
  const detail =
    problem?.detail || problem?.title || `The server answered ${res.status} ${res.statusText}`.trim();
  return new ApiError(res.status, detail, problem);
}

/** One call. `as`: 'json' (default), 'text' or 'blob'. A 401 ends the session (shows the
 *  sign-in form) unless `quiet401`, when it is thrown like any other problem. */
async function request(method, path, body, {as = 'json', quiet401 = false} = {}) {
  const headers = {Accept: as === 'json' ? 'application/json' : '*/*'};
  const init = {method, headers, credentials: 'same-origin', cache: 'no-store'};
  if (method !== 'GET') {
    headers['Content-Type'] = 'application/json';
    if (state.session?.csrf) headers['X-CSRF-Token'] = state.session.csrf;
    if (body !== undefined) init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch {
    throw new ApiError(0, 'Cannot reach the easgate server. Check that it runs and try again.');
  }
  if (res.status === 401 && !quiet401) {
    sessionEnded();
    throw new SessionEnded('the session ended');
  }
  if (!res.ok) throw await problemOf(res);
  if (res.status === 204) return null;
  if (as === 'blob') return res.blob();
  if (as === 'text') return res.text();
  return res.json();
}

const get = (path, params) => request('GET', `${API}${path}${query(params)}`);
const send = (method, path, body) => request(method, `${API}${path}`, body);

/** Every item of a paged list (for short lists: CAs, templates, groups). */
async function getAll(path, params = {}) {
  const items = [];
  let cursor;
  do {
    const page = await get(path, {...params, limit: 1000, cursor});
    items.push(...(page.items ?? []));
    cursor = page.next_cursor;
  } while (cursor);
  return items;
}

// ---------------------------------------------------------------------------------------------
// Session

function can(permission) {
  return Boolean(state.session?.permissions?.includes(permission));
}

async function resume() {
  try {
    const session = await request('GET', '/console/session', undefined, {quiet401: true});
    startSession(session, {focus: false});
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) showSignIn();
    else showSignIn({error: describe(err)});
  }
}

function startSession(session, {focus}) {
  state.session = {...session, permissions: session.permissions ?? []};
  renderHeader();
  route({focus});
}

/** A 401 anywhere: back to the sign-in form, once. */
function sessionEnded() {
  if (!state.session) return;
  state.session = null;
  showSignIn({error: 'Your session ended; sign in again.'});
}

async function signOut() {
  try {
    await request('DELETE', '/console/session', undefined, {quiet401: true});
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 401)) {
      say(byId('header-alert'), `Signing out failed: ${describe(err)}`);
      return;
    }
  }
  state.session = null;
  showSignIn({notice: 'You signed out.'});
}

// ---------------------------------------------------------------------------------------------
// Shell: header, navigation and the hash router

const PAGES = [
  {path: 'dashboard', nav: 'Dashboard', need: 'read', render: dashboardPage},
  {path: 'devices', nav: 'Devices', need: 'read', render: devicesPage},
  {path: 'quarantine', nav: 'Quarantine', need: 'read', render: quarantinePage},
  {path: 'users', nav: 'Users', need: 'read', render: usersPage},
  {path: 'certificates', nav: 'Certificates', need: 'read', render: certificatesPage},
  {path: 'templates', nav: 'Templates', need: 'read', render: templatesPage},
  {path: 'profiles', nav: 'Profiles', need: 'read', render: profilesPage},
  {path: 'rules', nav: 'Rules', need: 'read', render: rulesPage},
  {path: 'audit', nav: 'Audit', need: 'read_audit', render: auditPage},
  {path: 'doctor', nav: 'Doctor', need: 'read', render: doctorPage},
  // For a role that may enroll but not read (enroller); the others enroll from Users.
  {path: 'enroll', nav: 'Enroll', need: 'enroll', navUnless: 'read', render: enrollPage},
];

function navPages() {
  return PAGES.filter((p) => can(p.need) && !(p.navUnless && can(p.navUnless)));
}

function renderHeader() {
  const {name, role} = state.session;
  byId('whoami').textContent = `Signed in as ${name} (${role})`;
  say(byId('header-alert'), '');
  const links = navPages().map((p) => h('li', {}, h('a', {href: `#/${p.path}`}, p.nav)));
  fill(byId('main-nav'), h('ul', {}, links));
  byId('site-header').hidden = false;
}

function markNav(path) {
  for (const link of byId('main-nav').querySelectorAll('a')) {
    if (link.getAttribute('href') === `#/${path}`) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
}

function safeDecode(text) {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** `#/devices/ABC?state=block` → {parts: ['devices', 'ABC'], params}. */
function parseHash() {
  const raw = location.hash.replace(/^#\/?/, '');
  const at = raw.indexOf('?');
  const path = at < 0 ? raw : raw.slice(0, at);
  const params = new URLSearchParams(at < 0 ? '' : raw.slice(at + 1));
  return {parts: path.split('/').filter(Boolean).map(safeDecode), params};
}

function defaultPath() {
  if (can('read')) return 'dashboard';
  if (can('enroll')) return 'enroll';
  return 'dashboard';
}

function leavePage() {
  const hooks = state.leaving;
  state.leaving = [];
  for (const hook of hooks) hook();
}

function onLeave(hook) {
  state.leaving.push(hook);
}

/** Show the page the hash names. `focus`: move the focus to its heading (after navigating). */
function route({focus = false} = {}) {
  if (!state.session) return;
  leavePage();
  const {parts, params} = parseHash();
  if (!parts.length) {
    history.replaceState(null, '', `#/${defaultPath()}`);
    route({focus});
    return;
  }
  const page = PAGES.find((p) => p.path === parts[0]);
  markNav(page?.path);
  const main = byId('main');
  fill(main);
  const view = {main, args: parts.slice(1), params, focus};
  if (!page) notFoundPage(view);
  else if (!can(page.need)) notAllowedPage(view);
  else if (page.path === 'devices' && view.args.length) devicePage(view);
  else page.render(view);
}

/** The page's one <h1>, and the document title. */
function pageHeading(view, text) {
  document.title = `${text} – ${APP_NAME}`;
  const heading = h('h1', {tabindex: '-1'}, text);
  view.main.append(heading);
  if (view.focus) heading.focus();
  return heading;
}

function intro(text) {
  return h('p', {class: 'muted'}, text);
}

// ---------------------------------------------------------------------------------------------
// Shared widgets

/** A paged list: a table of `columns`, "Previous page" / "Next page". load(cursor) → page. */
function pagedTable({label, columns, load, empty}) {
  const box = h('div', {class: 'paged'});
  let earlier = []; // the cursors of the pages before the one shown
  let current = null;
  let shownOnce = false;

  async function show(cursor, {focus = false} = {}) {
    if (!shownOnce) fill(box, h('p', {class: 'muted'}, 'Loading…'));
    let page;
    try {
      page = await load(cursor ?? undefined);
    } catch (err) {
      if (err instanceof SessionEnded) return;
      fill(box, loadError(err, () => show(cursor)));
      return;
    }
    shownOnce = true;
    current = cursor;
    const items = page?.items ?? [];
    const pager = h('div', {class: 'actions pager'});
    if (earlier.length) {
      pager.append(
        h('button', {type: 'button', class: 'secondary', onclick: () => show(earlier.pop(), {focus: true})}, 'Previous page'),
      );
    }
    if (page?.next_cursor) {
      const next = page.next_cursor;
      pager.append(
        h('button', {type: 'button', class: 'secondary', onclick: () => { earlier.push(cursor); show(next, {focus: true}); }}, 'Next page'),
      );
    }
    const table = items.length ? dataTable(label, columns, items) : h('p', {}, empty);
    fill(box, table, pager.childElementCount ? pager : '');
    if (focus && table.tabIndex === 0) table.focus();
  }

  return {
    el: box,
    first() {
      earlier = [];
      return show(null);
    },
    reload() {
      return show(current);
    },
  };
}

/** The answer of an enrollment or re-enrollment: what the device owner needs, once. */
function enrollmentResult(enrollment, level = 3) {
  const e = enrollment ?? {};
  const qr = h('div', {class: 'qr-box'});
  const heading = h(`h${level}`, {tabindex: '-1'}, 'Enrollment link');
  const box = h(
    'div',
    {class: 'enrollment'},
    heading,
    h(
      'p',
      {},
      'Shown once: easgate keeps neither the challenge nor the link readable. Give the profile URL ' +
        '(or its QR code) to the device owner; it works once, until the challenge expires.',
    ),
    props([
      ['Device UID', code(e.uid)],
      ['User', e.user],
      ['Platform', e.platform],
      ['Template', e.template],
      ['Challenge', code(e.challenge)],
      ['Challenge expires', when(e.challenge_expires_at)],
      ['SCEP URL', code(e.scep_url)],
      ['Profile URL', code(e.profile_url)],
    ]),
    qr,
  );
  if (e.profile_url) showQr(qr, e.profile_url);
  return {box, heading};
}

/** The QR code of `text`, made by the server (POST /console/qr) and shown from a blob URL. */
async function showQr(box, text) {
  fill(box, h('p', {class: 'muted'}, 'Making the QR code…'));
  try {
    const blob = await request('POST', '/console/qr', {text}, {as: 'blob'});
    const url = URL.createObjectURL(blob);
    const img = h('img', {src: url, alt: 'QR code of the enrollment link', class: 'qr', width: 240, height: 240});
    img.addEventListener('load', () => URL.revokeObjectURL(url), {once: true});
    img.addEventListener('error', () => URL.revokeObjectURL(url), {once: true});
    fill(box, img);
  } catch (err) {
    if (err instanceof SessionEnded) return;
    fill(box, h('p', {role: 'alert', class: 'msg msg-error'}, `No QR code: ${describe(err)}`));
  }
}

const REVOCATION_REASONS = [
  ['unspecified', 'unspecified'],
  ['keyCompromise', 'keyCompromise (the key is lost or stolen)'],
  ['affiliationChanged', 'affiliationChanged'],
  ['superseded', 'superseded'],
  ['cessationOfOperation', 'cessationOfOperation'],
  ['certificateHold', 'certificateHold'],
];

/** A certificate's fields. */
function certificateProps(cert) {
  return props([
    ['Serial', code(cert.serial)],
    ['Status', badge(cert.status)],
    ['CA', cert.ca],
    ['Subject', cert.subject],
    ['Subject alternative names', joined(cert.sans)],
    ['Device UID', code(cert.device)],
    ['Template', cert.template],
    ['Key', cert.key_type],
    ['Not before', when(cert.not_before)],
    ['Not after', when(cert.not_after)],
    ['Issued', when(cert.issued_at)],
    cert.revoked_at ? ['Revoked', when(cert.revoked_at)] : null,
    cert.revocation_reason ? ['Revocation reason', cert.revocation_reason] : null,
  ]);
}

/** The revoke form of one certificate (helpdesk); `revoked(cert)` runs after success. */
function revokeForm(cert, msg, revoked) {
  const reason = selectInput('reason', REVOCATION_REASONS);
  const button = h('button', {type: 'submit', class: 'danger'}, 'Revoke certificate');
  const form = h(
    'form',
    {'aria-label': `Revoke certificate ${cert.serial}`},
    h('div', {class: 'filters'}, field('Revocation reason', reason), h('div', {class: 'actions'}, button)),
  );
  const submitted = guarded(button, async () => {
    msg.clear();
    try {
      const updated = await send('POST', `/certificates/${seg(cert.serial)}/revoke`, {reason: reason.value});
      msg.ok(`Certificate ${cert.serial} revoked.`);
      await revoked(updated);
    } catch (err) {
      msg.fail(err);
    }
  });
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    submitted();
  });
  return form;
}

/** One certificate with its revoke form, refreshed in place (its messages stay). */
function certificatePanel(cert, {level = 3, afterRevoke} = {}) {
  const msg = messages();
  const content = h('div');
  const panel = section(`Certificate ${cert.serial}`, {level}, content, msg.nodes);
  const show = (c) => {
    fill(
      content,
      certificateProps(c),
      can('helpdesk') && c.status === 'valid'
        ? revokeForm(c, msg, async (updated) => {
            show(updated ?? c);
            panel.querySelector('h2, h3')?.focus();
            await afterRevoke?.(updated ?? c);
          })
        : null,
    );
  };
  show(cert);
  return panel;
}

const PLATFORMS = ['ios', 'android', 'windows'];

/** The enroll form for one user (a fixed `user`) or any (a "User" field). */
function enrollForm({user, templates, level = 3, title = 'Enroll a device', enrolled}) {
  const result = h('div');
  const templateControl = templates
    ? selectInput('template', [['', 'The default template'], ...templates.map((t) => [t.name, t.is_default ? `${t.name} (default)` : t.name])])
    : textInput('template');
  const fields = [
    user ? null : field('User', textInput('user', {required: true, autocomplete: 'off'}), 'The owner’s UPN, e.g. alice@corp.example.'),
    field('Platform', selectInput('platform', PLATFORMS)),
    field('Template', templateControl, templates ? 'Optional.' : 'Optional; empty: the default template.'),
  ];
  const {form} = actionForm({
    label: 'Enroll a device',
    submit: 'Enroll device',
    fields,
    run: async (data) => {
      const upn = user ?? formText(data, 'user');
      const enrollment = await send('POST', '/devices', {
        user: upn,
        platform: formText(data, 'platform'),
        template: formOptional(data, 'template'),
      });
      const shownResult = enrollmentResult(enrollment, level);
      fill(result, shownResult.box);
      shownResult.heading.focus();
      await enrolled?.(enrollment);
      return `Device ${enrollment.uid} enrolled for ${enrollment.user}.`;
    },
  });
  return h('div', {}, h(`h${level}`, {}, title), form, result);
}

// ---------------------------------------------------------------------------------------------
// Sign-in page

function showSignIn({error, notice} = {}) {
  leavePage();
  byId('site-header').hidden = true;
  fill(byId('main-nav'));
  document.title = `Sign in – ${APP_NAME}`;
  const token = h('input', {type: 'password', name: 'token', autocomplete: 'off', required: true, spellcheck: 'false'});
  const {form, msg} = actionForm({
    label: 'Sign in',
    submit: 'Sign in',
    layout: 'sign-in-fields',
    fields: [field('API token', token, 'An easgate API token (egt_…), as `easgate token create` prints it.')],
    run: async () => {
      const secret = token.value.trim();
      if (!secret) throw new ApiError(0, 'Enter an API token.');
      let session;
      try {
        session = await request('POST', '/console/session', {token: secret}, {quiet401: true});
      } catch (err) {
        if (err instanceof ApiError && err.status === 401) {
          throw new ApiError(401, `Sign-in failed: ${err.message.replace(/\.$/, '')}.`);
        }
        throw err;
      }
      token.value = '';
      startSession(session, {focus: true});
    },
  });
  fill(byId('main'), h('div', {class: 'signin'}, h('p', {class: 'brand'}, APP_NAME), h('h1', {}, 'Sign in'), form));
  if (error) msg.fail(new ApiError(0, error));
  if (notice) msg.ok(notice);
}

// ---------------------------------------------------------------------------------------------
// Dashboard

function dashboardPage(view) {
  pageHeading(view, 'Dashboard');
  const summary = h('div');
  const checks = section('Setup checks');
  view.main.append(summary, checks);
  loadInto(summary, () => get('/dashboard'), dashboardSummary);
  doctorSummary(checks);
}

function dashboardSummary(d) {
  const devices = d?.devices ?? {};
  const queue = d?.quarantine_queue ?? 0;
  const refusals = d?.refusals_last_hour ?? [];
  const expiring = d?.expiring_certificates ?? [];
  const total = d?.expiring_total ?? expiring.length;
  const crls = d?.crls ?? [];
  const cards = h(
    'div',
    {class: 'cards'},
    section(
      'Devices by access state',
      {className: 'card'},
      props(['Allowed', 'Blocked', 'Quarantined'].map((s) => [s, String(devices[s] ?? 0)])),
      h('p', {}, h('a', {href: '#/devices'}, 'All devices')),
    ),
    section(
      'Quarantine queue',
      {className: 'card'},
      h('p', {class: 'big-number'}, String(queue)),
      h('p', {}, queue === 1 ? 'device waiting for approval' : 'devices waiting for approval'),
      h('p', {}, h('a', {href: '#/quarantine'}, 'Open the quarantine queue')),
    ),
    section(
      'Refusals in the last hour',
      {className: 'card'},
      refusals.length
        ? dataTable('Refusals in the last hour by cause', [
            {title: 'Cause', cell: (r) => r.cause},
            {title: 'Requests', cell: (r) => String(r.count)},
          ], refusals)
        : h('p', {}, 'No request was refused in the last hour.'),
    ),
  );
  const renewals = section(
    'Certificates in their renewal window',
    {},
    expiring.length
      ? [
          total > expiring.length ? h('p', {}, `The ${expiring.length} that expire first of ${total}.`) : null,
          dataTable('Certificates in their renewal window', [
            {title: 'Serial', cell: (c) => code(c.serial)},
            {title: 'Device', cell: (c) => c.device},
            {title: 'Subject', cell: (c) => c.subject},
            {title: 'Not after', cell: (c) => when(c.not_after)},
            {title: 'Window opened', cell: (c) => when(c.renew_from)},
            {title: 'Renewal started', cell: (c) => shown(Boolean(c.renewal_started))},
          ], expiring),
        ]
      : h('p', {}, 'No certificate is in its renewal window.'),
  );
  const crlSection = section(
    'CRL freshness',
    {},
    crls.length
      ? dataTable('CRLs by CA', [
          {title: 'CA', cell: (c) => c.ca},
          {title: 'Full CRL next update', cell: (c) => when(c.full_next_update, 'none published')},
          {title: 'Delta CRL next update', cell: (c) => when(c.delta_next_update, 'none published')},
          {title: 'State', cell: (c) => badge(c.fresh ? 'fresh' : 'stale')},
        ], crls)
      : h('p', {}, 'No CA yet.'),
  );
  return [cards, renewals, crlSection];
}

/** The failing setup checks, or that all pass. */
async function doctorSummary(box) {
  const note = h('p', {role: 'status'}, 'Running setup checks…');
  const rest = h('div');
  box.append(note, rest);
  try {
    const report = await get('/doctor');
    const failing = (report?.checks ?? []).filter((c) => c.status === 'fail' || c.ok === false);
    if (!failing.length) {
      note.textContent = 'All setup checks pass.';
    } else {
      note.textContent = failing.length === 1 ? '1 setup check fails:' : `${failing.length} setup checks fail:`;
      rest.append(
        h(
          'ul',
          {class: 'plain'},
          failing.map((c) => h('li', {}, h('strong', {}, c.name), `: ${c.detail ?? ''}`, c.fix ? h('br') : null, c.fix ? `Fix: ${c.fix}` : null)),
        ),
      );
    }
    rest.append(h('p', {}, h('a', {href: '#/doctor'}, 'Every setup check')));
  } catch (err) {
    if (err instanceof SessionEnded) return;
    note.textContent = 'The setup checks did not run.';
    fill(rest, loadError(err));
  }
}

// ---------------------------------------------------------------------------------------------
// Devices (EAS partnerships)

const STATE_OPTIONS = [['', 'Any'], ['allow', 'allow'], ['block', 'block'], ['quarantine', 'quarantine'], ['refuse', 'refuse']];
const PLATFORM_OPTIONS = [['', 'Any'], ['ios', 'ios'], ['android', 'android'], ['windows', 'windows'], ['other', 'other']];
const CLIENT_OPTIONS = [['', 'Any'], ['native', 'native (EAS)'], ['outlook', 'outlook'], ['other', 'other']];

function deviceLink(id) {
  return h('a', {href: `#/devices/${seg(id)}`}, id);
}

function devicesPage(view) {
  pageHeading(view, 'Devices');
  view.main.append(intro('Every (user, DeviceId) partnership the gateway has seen, as Exchange’s Get-MobileDevice names it.'));
  const p = view.params;
  const filters = {
    text: p.get('text') ?? '',
    user: p.get('user') ?? '',
    state: p.get('state') ?? '',
    platform: p.get('platform') ?? '',
    client: p.get('client') ?? '',
  };
  const table = pagedTable({
    label: 'Device partnerships',
    empty: 'No partnership matches.',
    load: (cursor) => get('/partnerships', {...filters, limit: PAGE_SIZE, cursor}),
    columns: [
      {title: 'DeviceId', cell: (d) => [deviceLink(d.DeviceId), d.suspect ? [' ', badge('suspect')] : null]},
      {title: 'User', cell: (d) => d.user},
      {title: 'DeviceType', cell: (d) => d.DeviceType},
      {title: 'DeviceModel', cell: (d) => d.DeviceModel},
      {title: 'ClientType', cell: (d) => d.ClientType},
      {title: 'DeviceAccessState', cell: (d) => badge(d.DeviceAccessState)},
      {title: 'DeviceAccessStateReason', cell: (d) => d.DeviceAccessStateReason},
      {title: 'LastSuccessSync', cell: (d) => when(d.LastSuccessSync, 'never')},
    ],
  });
  const {form} = actionForm({
    label: 'Filter devices',
    submit: 'Filter',
    layout: 'filters',
    buttonClass: 'secondary',
    fields: [
      field('Search', textInput('text', {value: filters.text})),
      field('User', textInput('user', {value: filters.user})),
      field('State', selectInput('state', STATE_OPTIONS, {value: filters.state})),
      field('Platform', selectInput('platform', PLATFORM_OPTIONS, {value: filters.platform})),
      field('Client', selectInput('client', CLIENT_OPTIONS, {value: filters.client})),
    ],
    run: async (data) => {
      for (const key of Object.keys(filters)) filters[key] = formText(data, key);
      history.replaceState(null, '', `#/devices${query(filters)}`);
      await table.first();
    },
  });
  view.main.append(form, table.el);
  table.first();
}

// ---------------------------------------------------------------------------------------------
// One device: its partnerships, override, certificates, enrolled device and decisions

function partnershipProps(d) {
  return props([
    ['DeviceId', code(d.DeviceId)],
    ['User', d.user],
    ['DeviceType', d.DeviceType],
    ['DeviceModel', d.DeviceModel],
    ['DeviceOS', d.DeviceOS],
    ['DeviceUserAgent', d.DeviceUserAgent],
    ['FriendlyName', d.FriendlyName],
    ['ClientType', d.ClientType],
    ['Platform', d.platform],
    ['Protocol', d.protocol],
    ['FirstSyncTime', when(d.FirstSyncTime)],
    ['LastSuccessSync', when(d.LastSuccessSync, 'never')],
    ['Last seen', when(d.last_seen)],
    ['Last command', d.last_command],
    ['Certificate serial', code(d.cert_serial)],
    ['Device status', d.device_state],
    ['Suspect', d.suspect ? 'yes: requests named this DeviceId without its bound certificate' : 'no'],
  ]);
}

function decisionProps(d) {
  return props([
    ['DeviceAccessState', badge(d.DeviceAccessState)],
    ['DeviceAccessStateReason', d.DeviceAccessStateReason],
    ['DeviceAccessControlRule', d.DeviceAccessControlRule],
    ['Last decision', [badge(d.access_state), ' ', d.access_reason ?? '']],
    ['Last refusal', d.last_refusal ? [d.last_refusal, ' (', when(d.last_refusal_at), ')'] : 'none'],
  ]);
}

function overrideProps(o) {
  if (!o) return h('p', {}, 'No override: the rules decide.');
  return props([
    ['Action', badge(o.action)],
    ['Reason', o.reason],
    ['Without a certificate', o.unmanaged ? 'yes (allowed unmanaged)' : 'no'],
    ['Set', when(o.created_at)],
  ]);
}

function devicePage(view) {
  const id = view.args[0];
  pageHeading(view, `Device ${id}`);
  const topMsg = messages(); // stays when the sections go (after Clear override)
  const body = h('div');
  view.main.append(h('p', {}, h('a', {href: '#/devices'}, 'All devices')), h('div', {}, topMsg.nodes), body);

  const ui = {
    partnerships: h('div', {}, h('p', {class: 'muted'}, 'Loading…')),
    decisions: h('div'),
    audit: h('div'),
    override: h('div'),
    certificates: h('div'),
    enrolled: h('div'),
  };
  let serials = [];
  let enrolledPanels = [];
  const overrideMsg = messages();

  function showGone() {
    fill(
      body,
      h('p', {class: 'msg msg-info'}, `Nothing is recorded for DeviceId ${id}: no partnership and no override. It appears again when the device next syncs.`),
    );
  }

  /** The partnerships, decisions and override; false when there is nothing to show. */
  async function loadDetail() {
    let detail;
    try {
      detail = await get(`/partnerships/${seg(id)}`);
    } catch (err) {
      if (err instanceof SessionEnded) return false;
      if (err instanceof ApiError && err.status === 404) showGone();
      else fill(body, loadError(err, init));
      return false;
    }
    const partnerships = detail?.partnerships ?? [];
    const several = partnerships.length > 1;
    const titled = (p, content) => [several ? h('h3', {}, `${p.user}${p.suspect ? ' (suspect)' : ''}`) : null, content];
    fill(
      ui.partnerships,
      partnerships.length
        ? partnerships.map((p) => titled(p, partnershipProps(p)))
        : h('p', {}, 'No partnership is recorded for this DeviceId (only an override).'),
    );
    fill(
      ui.decisions,
      partnerships.length ? partnerships.map((p) => titled(p, decisionProps(p))) : h('p', {}, 'No decision is recorded.'),
    );
    fill(ui.override, overrideProps(detail?.override));
    clearButton.hidden = !detail?.override;
    serials = [
      ...new Set(
        [...(detail?.bound_certificates ?? []), ...partnerships.map((p) => p.cert_serial)]
          .filter(Boolean)
          .map((s) => String(s).toUpperCase()),
      ),
    ];
    return true;
  }

  /** The certificates of the DeviceId, each with its revoke form; returns those found. */
  async function loadCertificates() {
    if (!serials.length) {
      fill(ui.certificates, h('p', {}, 'No certificate is known for this DeviceId.'));
      return [];
    }
    const found = await Promise.all(
      serials.map((serial) => get(`/certificates/${seg(serial)}`).then((cert) => ({serial, cert}), (err) => ({serial, err}))),
    );
    if (found.some((f) => f.err instanceof SessionEnded)) return [];
    fill(
      ui.certificates,
      ...found.map(({serial, cert, err}) =>
        cert
          ? certificatePanel(cert, {afterRevoke: () => Promise.all(enrolledPanels.map((p) => p.reload()))})
          : section(`Certificate ${serial}`, {level: 3}, h('p', {role: 'alert', class: 'msg msg-error'}, describe(err))),
      ),
    );
    return found.map((f) => f.cert).filter(Boolean);
  }

  /** The enrolled (MDM) devices the certificates name. */
  function showEnrolled(certs) {
    const uids = [...new Set(certs.map((c) => c.device).filter(Boolean))];
    enrolledPanels = uids.map((uid) => enrolledDevicePanel(uid, loadCertificates));
    fill(
      ui.enrolled,
      ...(enrolledPanels.length
        ? enrolledPanels.map((p) => p.panel)
        : [h('p', {}, 'No enrolled device is known (no certificate of easgate’s names one).')]),
    );
  }

  async function init() {
    if (!(await loadDetail())) return;
    showEnrolled(await loadCertificates());
  }

  const clearButton = actionButton(
    'Clear override',
    async () => {
      overrideMsg.clear();
      try {
        const cleared = await send('DELETE', `/overrides/${seg(id)}`);
        const n = cleared?.partnerships ?? 0;
        showGone();
        topMsg.ok(`Override of ${id} cleared, with ${n} partnership${n === 1 ? '' : 's'}.`);
      } catch (err) {
        overrideMsg.fail(err);
      }
    },
    {class: 'secondary', hidden: true},
  );

  const overrideSection = section('Override', {}, ui.override);
  if (can('helpdesk')) {
    const reason = textInput('reason');
    const form = h(
      'form',
      {'aria-label': 'Set the override'},
      field('Override reason', reason, 'Optional; kept with the override and in the audit trail.'),
    );
    // Enter in the reason field must not pick an action.
    form.addEventListener('submit', (event) => event.preventDefault());
    const decide = (action, label) =>
      actionButton(
        label,
        async () => {
          overrideMsg.clear();
          try {
            await send('PUT', `/overrides/${seg(id)}`, {action, reason: reason.value.trim() || undefined});
            reason.value = '';
            overrideMsg.ok(`Override of ${id} set to ${action}; it applies from the device’s next request.`);
            await loadDetail();
          } catch (err) {
            overrideMsg.fail(err);
          }
        },
        action === 'block' ? {class: 'danger'} : {},
      );
    form.append(
      h('div', {class: 'actions'}, decide('allow', 'Allow'), decide('block', 'Block'), decide('quarantine', 'Quarantine'), clearButton),
      h('p', {class: 'hint'}, 'Clear override also forgets the DeviceId’s partnerships; they come back at its next sync.'),
    );
    overrideSection.append(form, ...overrideMsg.nodes);
  }

  const decisionsSection = section('Recent decisions', {}, ui.decisions);
  if (can('read_audit')) {
    decisionsSection.append(h('h3', {}, 'Audit events'), ui.audit);
    loadInto(
      ui.audit,
      () => get('/audit', {subject: id, limit: 20, order: 'desc'}),
      (page) =>
        page?.items?.length
          ? dataTable(`Latest audit events about ${id}`, [
              {title: 'Time', cell: (e) => when(e.at)},
              {title: 'Actor', cell: (e) => e.actor},
              {title: 'Action', cell: (e) => e.action},
              {title: 'Detail', cell: (e) => e.detail},
            ], page.items)
          : h('p', {}, 'No audit event names this DeviceId.'),
    );
  }

  body.append(
    section('Partnership', {}, ui.partnerships),
    overrideSection,
    section('Certificates', {}, ui.certificates),
    section('Enrolled device', {}, ui.enrolled),
    decisionsSection,
  );
  init();
}

/** An enrolled (MDM) device with Re-enroll (enroll) and Retire (helpdesk). `retired()` runs
 *  after a retire (its certificates were revoked). Returns {panel, reload}. */
function enrolledDevicePanel(uid, retired) {
  const msg = messages();
  const content = h('div', {}, h('p', {class: 'muted'}, 'Loading…'));
  const actions = h('div', {class: 'actions'});
  const result = h('div');
  const panel = section(`Device UID ${uid}`, {level: 3}, content, actions, msg.nodes, result);

  const reenroll = actionButton(
    'Re-enroll',
    async () => {
      msg.clear();
      try {
        const enrollment = await send('POST', `/devices/${seg(uid)}/reenroll`, {});
        const shownResult = enrollmentResult(enrollment, 4);
        fill(result, shownResult.box);
        msg.ok(`New enrollment link for ${uid}; earlier unused ones stop working.`);
        shownResult.heading.focus();
      } catch (err) {
        msg.fail(err);
      }
    },
    {class: 'secondary'},
  );
  const retire = confirmButton({
    text: 'Retire',
    confirmText: 'Confirm retire',
    explain: `Press Confirm retire to retire ${uid}: its certificates are revoked and the gateway refuses it.`,
    msg,
    run: async () => {
      try {
        const done = await send('POST', `/devices/${seg(uid)}/retire`, {});
        const n = done?.revoked?.length ?? 0;
        msg.ok(`Device ${uid} retired; ${n} certificate${n === 1 ? '' : 's'} revoked.`);
        fill(result);
        await reload();
        panel.querySelector('h3')?.focus();
        await retired?.();
      } catch (err) {
        msg.fail(err);
      }
    },
  });

  async function reload() {
    let detail;
    try {
      detail = await get(`/devices/${seg(uid)}`);
    } catch (err) {
      if (err instanceof SessionEnded) return;
      fill(content, loadError(err, reload));
      return;
    }
    const d = detail?.device ?? {};
    const certs = detail?.certificates ?? [];
    fill(
      content,
      props([
        ['User', d.user],
        ['Platform', d.platform],
        ['Template', d.template],
        ['State', badge(d.state)],
        ['Hardware serial', d.device_serial],
        ['Enrolled', when(d.created_at)],
        ['Changed', when(d.updated_at)],
        ['Certificates', certs.map((c, i) => [i ? ', ' : '', code(c.serial), ` (${c.status})`])],
      ]),
    );
    const ended = d.state === 'retired' || d.state === 'wiped';
    fill(actions, ...[can('enroll') && !ended ? reenroll : null, can('helpdesk') && !ended ? retire : null].filter(Boolean));
  }

  reload();
  return {panel, reload};
}

// ---------------------------------------------------------------------------------------------
// Quarantine queue: polled every 2 seconds while the page is shown

function quarantinePage(view) {
  pageHeading(view, 'Quarantine queue');
  view.main.append(
    intro('Devices the rules put in quarantine wait here. Approve sets an allow override, Block a block override; the device gets the decision at its next sync. The list updates by itself.'),
  );
  const count = h('p', {class: 'big-line', tabindex: '-1'}, 'Loading the queue…');
  const msg = messages();
  const loadAlert = messageBox('alert');
  const waitingBox = h('div');
  const otherBox = h('div');
  view.main.append(count, ...msg.nodes, loadAlert, waitingBox, otherBox);

  let active = true;
  let timer = null;
  let lastSignature = '';
  onLeave(() => {
    active = false;
    clearTimeout(timer);
  });

  async function decide(deviceId, action) {
    msg.clear();
    try {
      const reason = action === 'allow' ? 'approved in the console' : 'blocked in the console';
      await send('PUT', `/overrides/${seg(deviceId)}`, {action, reason});
      msg.ok(action === 'allow' ? `Approved ${deviceId}.` : `Blocked ${deviceId}.`);
      await refresh();
    } catch (err) {
      msg.fail(err);
    }
  }

  function render(items, overrides) {
    const decided = new Map(
      overrides.filter((o) => o.action === 'allow' || o.action === 'block').map((o) => [String(o.eas_device_id).toLowerCase(), o]),
    );
    const waiting = [];
    const other = [];
    for (const p of items) {
      if (p.suspect || decided.has(String(p.DeviceId).toLowerCase())) other.push(p);
      else waiting.push(p);
    }
    const ids = new Set(waiting.map((p) => p.DeviceId));
    count.textContent =
      ids.size === 0 ? 'No device is waiting for approval.' : `${ids.size} device${ids.size === 1 ? '' : 's'} waiting`;

    // Keep the keyboard focus in the list when the row it was in goes away.
    const focusedRow = waitingBox.contains(document.activeElement) ? document.activeElement.closest('tr') : null;
    const focusedIndex = focusedRow ? [...focusedRow.parentElement.children].indexOf(focusedRow) : -1;

    const withButtons = new Set();
    const decisionColumn = {
      title: 'Decision',
      cell: (p) => {
        if (withButtons.has(p.DeviceId)) return 'see above';
        withButtons.add(p.DeviceId);
        return h(
          'div',
          {class: 'actions'},
          actionButton('Approve', () => decide(p.DeviceId, 'allow'), {'aria-label': `Approve ${p.DeviceId}`, class: 'small'}),
          actionButton('Block', () => decide(p.DeviceId, 'block'), {'aria-label': `Block ${p.DeviceId}`, class: 'small danger'}),
        );
      },
    };
    fill(
      waitingBox,
      waiting.length
        ? dataTable('Devices waiting for approval', [
            {title: 'DeviceId', cell: (p) => deviceLink(p.DeviceId)},
            {title: 'User', cell: (p) => p.user},
            {title: 'DeviceType', cell: (p) => p.DeviceType},
            {title: 'FirstSyncTime', cell: (p) => when(p.FirstSyncTime)},
            {title: 'Reason', cell: (p) => p.access_reason},
            ...(can('helpdesk') ? [decisionColumn] : []),
          ], waiting)
        : '',
    );
    fill(
      otherBox,
      other.length
        ? section(
            'Decided, or not for an override',
            {},
            intro('Quarantined at their last request, but not waiting for a decision here.'),
            dataTable('Quarantined devices not waiting for a decision', [
              {title: 'DeviceId', cell: (p) => deviceLink(p.DeviceId)},
              {title: 'User', cell: (p) => p.user},
              {title: 'DeviceType', cell: (p) => p.DeviceType},
              {title: 'Why', cell: (p) => whyNotWaiting(p, decided.get(String(p.DeviceId).toLowerCase()))},
            ], other),
          )
        : '',
    );

    if (focusedRow && !waitingBox.contains(document.activeElement)) {
      const rows = waitingBox.querySelectorAll('tbody tr');
      const target = rows[Math.min(focusedIndex, rows.length - 1)]?.querySelector('button');
      (target ?? count).focus();
    }
  }

  async function refresh() {
    const [page, overrides] = await Promise.all([
      get('/partnerships', {state: 'quarantine', limit: 1000}),
      getAll('/overrides'),
    ]);
    if (!active) return;
    say(loadAlert, page?.next_cursor ? 'More than 1000 devices are in quarantine; the first 1000 are shown.' : '');
    const signature = JSON.stringify([page?.items ?? [], overrides]);
    if (signature === lastSignature) return;
    lastSignature = signature;
    render(page?.items ?? [], overrides);
  }

  async function poll() {
    try {
      await refresh();
    } catch (err) {
      if (err instanceof SessionEnded) return;
      if (active) say(loadAlert, `The queue could not be updated: ${describe(err)}`);
    }
    if (active) timer = setTimeout(poll, POLL_MS);
  }
  poll();
}

function whyNotWaiting(p, override) {
  if (p.suspect) return 'Possible spoof: requests without the DeviceId’s bound certificate; an override does not apply.';
  if (override?.action === 'allow') return ['Approved (', when(override.created_at), '); applies at the device’s next sync.'];
  if (override?.action === 'block') return ['Blocked (', when(override.created_at), '); applies at the device’s next sync.'];
  return '—';
}

// ---------------------------------------------------------------------------------------------
// Users and groups

function usersPage(view) {
  pageHeading(view, 'Users and groups');
  let text = '';
  const selected = h('div');
  let templates = null; // loaded once, for the enroll form

  const users = pagedTable({
    label: 'Users',
    empty: 'No user matches.',
    load: (cursor) => get('/users', {text, limit: PAGE_SIZE, cursor}),
    columns: [
      {title: 'UPN', cell: (u) => h('button', {type: 'button', class: 'link', onclick: () => select(u.upn)}, u.upn)},
      {title: 'Email', cell: (u) => u.email},
      {title: 'Name', cell: (u) => u.display_name},
      {title: 'Groups', cell: (u) => joined(u.groups)},
      {title: 'Disabled', cell: (u) => (u.disabled ? badge('disabled') : 'no')},
      ...(can('admin') ? [{title: 'Change', cell: (u) => disableButton(u)}] : []),
    ],
  });
  const listMsg = messages();

  async function setDisabled(u, disable) {
    try {
      const done = await send('PATCH', `/users/${seg(u.upn)}`, {disabled: disable});
      const n = done?.revoked?.length ?? 0;
      listMsg.ok(disable ? `User ${u.upn} disabled; ${n} certificate${n === 1 ? '' : 's'} revoked.` : `User ${u.upn} enabled.`);
      await users.reload();
    } catch (err) {
      listMsg.fail(err);
    }
  }

  // Disabling revokes every certificate of the user, which enabling does not undo: it asks
  // for a second press, as Retire does.
  function disableButton(u) {
    if (u.disabled) {
      return actionButton('Enable', () => {
        listMsg.clear();
        return setDisabled(u, false);
      }, {'aria-label': `Enable ${u.upn}`, class: 'small secondary'});
    }
    return confirmButton({
      text: 'Disable',
      confirmText: 'Confirm disable',
      label: `Disable ${u.upn}`,
      confirmLabel: `Confirm disabling ${u.upn}`,
      explain: `Press Confirm disable to disable ${u.upn}: the gateway refuses the user and every certificate of theirs is revoked.`,
      msg: listMsg,
      className: 'small danger',
      run: () => setDisabled(u, true),
    });
  }

  async function select(upn) {
    const heading = h('h2', {tabindex: '-1'}, `Devices of ${upn}`);
    const details = h('div');
    const devices = h('div');
    const panel = h('section', {class: 'panel'}, heading, details, devices);
    fill(selected, panel);
    heading.focus();
    const loadDevices = () =>
      loadInto(
        devices,
        () => get('/devices', {user: upn, limit: 1000}),
        (page) =>
          page?.items?.length
            ? dataTable(`Enrolled devices of ${upn}`, [
                {title: 'UID', cell: (d) => code(d.uid)},
                {title: 'Platform', cell: (d) => d.platform},
                {title: 'Template', cell: (d) => d.template},
                {title: 'State', cell: (d) => badge(d.state)},
                {title: 'Hardware serial', cell: (d) => d.device_serial},
                {title: 'Enrolled', cell: (d) => when(d.created_at)},
                {title: 'Changed', cell: (d) => when(d.updated_at)},
              ], page.items)
            : h('p', {}, 'No enrolled device.'),
      );
    loadInto(details, () => get(`/users/${seg(upn)}`), (u) =>
      props([
        ['Email', u.email],
        ['Name', u.display_name],
        ['Groups', joined(u.groups)],
        ['Disabled', u.disabled ? 'yes' : 'no'],
      ]),
    );
    loadDevices();
    if (can('enroll')) {
      if (!templates) {
        try {
          templates = await getAll('/templates');
        } catch (err) {
          if (err instanceof SessionEnded) return;
          templates = null;
        }
      }
      panel.append(enrollForm({user: upn, templates, level: 3, enrolled: loadDevices}));
    }
  }

  const {form: search} = actionForm({
    label: 'Find users',
    submit: 'Find',
    layout: 'filters',
    buttonClass: 'secondary',
    fields: [field('Search users', textInput('text'), 'Part of the UPN, email or name.')],
    run: async (data) => {
      text = formText(data, 'text');
      await users.first();
    },
  });
  view.main.append(
    section('Users', {className: ''}, intro('Select a UPN to see the user’s enrolled devices' + (can('enroll') ? ' and enroll one.' : '.')), search, listMsg.nodes, users.el),
    selected,
  );
  users.first();

  if (can('admin')) view.main.append(addUserSection(() => users.first()));
  const groups = h('div');
  const loadGroups = () =>
    loadInto(groups, () => getAll('/groups'), (list) =>
      list.length
        ? dataTable('Group list', [
            {title: 'Name', cell: (g) => g.name},
            {title: 'Members', cell: (g) => String(g.members ?? 0)},
            {title: 'Created', cell: (g) => when(g.created_at)},
          ], list)
        : h('p', {}, 'No group yet.'),
    );
  view.main.append(section('Groups', {className: ''}, groups));
  loadGroups();
  if (can('admin')) view.main.append(addGroupSection(loadGroups));
}

function addUserSection(added) {
  const {form} = actionForm({
    label: 'Add user',
    submit: 'Add user',
    fields: [
      field('UPN', textInput('upn', {required: true}), 'e.g. alice@corp.example'),
      field('Email', textInput('email', {required: true, type: 'email'})),
      field('Display name', textInput('display_name')),
      field('Groups', textInput('groups'), 'Comma separated; the groups must exist.'),
    ],
    run: async (data, formEl) => {
      const user = await send('POST', '/users', {
        upn: formText(data, 'upn'),
        email: formText(data, 'email'),
        display_name: formOptional(data, 'display_name'),
        groups: splitList(formText(data, 'groups')),
      });
      formEl.reset();
      await added();
      return `User ${user.upn} added.`;
    },
  });
  return section('Add user', {}, form);
}

function addGroupSection(added) {
  const {form} = actionForm({
    label: 'Add group',
    submit: 'Add group',
    fields: [field('Group name', textInput('name', {required: true}))],
    run: async (data, formEl) => {
      const group = await send('POST', '/groups', {name: formText(data, 'name')});
      formEl.reset();
      await added();
      return `Group ${group.name} added.`;
    },
  });
  return section('Add group', {}, form);
}

// ---------------------------------------------------------------------------------------------
// Certificates

function certificatesPage(view) {
  pageHeading(view, 'Certificates');
  const filters = {device: '', status: '', ca: '', text: ''};
  const details = h('div');
  const table = pagedTable({
    label: 'Certificates',
    empty: 'No certificate matches.',
    load: (cursor) => get('/certificates', {...filters, limit: PAGE_SIZE, cursor}),
    columns: [
      {title: 'Serial', cell: (c) => h('button', {type: 'button', class: 'link mono', onclick: () => select(c.serial)}, c.serial)},
      {title: 'Subject', cell: (c) => c.subject},
      {title: 'Device', cell: (c) => c.device},
      {title: 'CA', cell: (c) => c.ca},
      {title: 'Status', cell: (c) => badge(c.status)},
      {title: 'Not after', cell: (c) => when(c.not_after)},
    ],
  });

  async function select(serial) {
    fill(details, h('p', {class: 'muted'}, 'Loading…'));
    try {
      const cert = await get(`/certificates/${seg(serial)}`);
      const panel = certificatePanel(cert, {level: 2, afterRevoke: () => table.reload()});
      fill(details, panel);
      panel.querySelector('h2')?.focus();
    } catch (err) {
      if (err instanceof SessionEnded) return;
      fill(details, loadError(err, () => select(serial)));
    }
  }

  const caSelect = selectInput('ca', [['', 'Any']]);
  const {form} = actionForm({
    label: 'Filter certificates',
    submit: 'Filter',
    layout: 'filters',
    buttonClass: 'secondary',
    fields: [
      field('Device', textInput('device'), 'A device UID.'),
      field('Status', selectInput('status', [['', 'Any'], 'valid', 'revoked', 'expired'])),
      field('CA', caSelect),
      field('Search', textInput('text'), 'Part of the subject or serial.'),
    ],
    run: async (data) => {
      for (const key of Object.keys(filters)) filters[key] = formText(data, key);
      fill(details);
      await table.first();
    },
  });
  view.main.append(intro('Select a serial for the certificate’s details' + (can('helpdesk') ? ' and to revoke it.' : '.')), form, details, table.el);
  table.first();
  getAll('/cas').then(
    (cas) => caSelect.append(...cas.map((c) => h('option', {value: c.name}, c.name))),
    () => {},
  );
}

// ---------------------------------------------------------------------------------------------
// Templates

const KEY_TYPES = ['rsa-2048', 'rsa-3072', 'rsa-4096', 'ec-p256', 'ec-p384'];

function templatesPage(view) {
  pageHeading(view, 'Templates');
  view.main.append(intro('What a device certificate holds: its CA, subject, names, key and life.'));
  const list = h('div');
  const load = () =>
    loadInto(list, () => getAll('/templates'), (templates) =>
      templates.length
        ? dataTable('Templates', [
            {title: 'Name', cell: (t) => t.name},
            {title: 'CA', cell: (t) => t.ca},
            {title: 'Subject', cell: (t) => code(t.subject)},
            {title: 'SANs', cell: (t) => (t.sans?.length ? t.sans.map((s, i) => [i ? h('br') : '', code(s)]) : '—')},
            {title: 'Key', cell: (t) => t.key_type},
            {title: 'Validity (days)', cell: (t) => String(t.validity_days ?? '')},
            {title: 'Renew before (days)', cell: (t) => String(t.renew_before_days ?? '')},
            {title: 'Default', cell: (t) => (t.is_default ? 'yes' : 'no')},
          ], templates)
        : h('p', {}, 'No template yet.'),
    );
  view.main.append(list);
  load();
  if (can('admin')) view.main.append(createTemplateSection(load));
}

function createTemplateSection(created) {
  const caSelect = selectInput('ca', [], {required: true});
  getAll('/cas').then(
    (cas) => caSelect.append(...cas.map((c) => h('option', {value: c.name}, c.name))),
    () => {},
  );
  const {form} = actionForm({
    label: 'Create template',
    submit: 'Create template',
    fields: [
      field('Name', textInput('name', {required: true})),
      field('CA', caSelect),
      field('Subject', textInput('subject', {required: true, value: 'CN={DeviceUid}'}), 'Lookup values such as {DeviceUid}, {UserPrincipalName}.'),
      field('SAN', h('textarea', {name: 'sans', rows: 3, spellcheck: 'false'}), 'One per line, e.g. email:{EmailAddress} or upn:{UserPrincipalName}.'),
      field('Key', selectInput('key', KEY_TYPES, {value: 'rsa-2048'}), 'Of keys the server makes (PKCS#12 delivery).'),
      field('Validity days', h('input', {type: 'number', name: 'validity_days', min: 1, inputmode: 'numeric'}), 'Empty: the default.'),
      field('Renew before days', h('input', {type: 'number', name: 'renew_before_days', min: 0, inputmode: 'numeric'}), 'Empty: the default.'),
      h('div', {class: 'field checks'}, (() => {
        const id = newId('c');
        return h('label', {for: id}, h('input', {type: 'checkbox', id, name: 'default', value: 'yes'}), 'Make it the default template');
      })()),
    ],
    run: async (data, formEl) => {
      const template = await send('POST', '/templates', {
        name: formText(data, 'name'),
        ca: formText(data, 'ca'),
        subject: formText(data, 'subject'),
        sans: splitList(String(data.get('sans') ?? '').replace(/,/g, '\n')),
        key: formOptional(data, 'key'),
        validity_days: formNumber(data, 'validity_days'),
        renew_before_days: formNumber(data, 'renew_before_days'),
        default: data.get('default') === 'yes',
      });
      formEl.reset();
      await created();
      return `Template ${template.name} created.`;
    },
  });
  return section('Create template', {}, form);
}

// ---------------------------------------------------------------------------------------------
// Profiles

function profilesPage(view) {
  pageHeading(view, 'Profiles');
  view.main.append(intro('What a phone installs: the mail account and how its certificate arrives.'));
  const list = h('div');
  const preview = h('div');
  const load = () =>
    loadInto(list, () => getAll('/profiles'), (profiles) =>
      profiles.length
        ? dataTable('Device profiles', [
            {title: 'Name', cell: (p) => p.name},
            {title: 'Platform', cell: (p) => p.platform},
            {title: 'Template', cell: (p) => p.template},
            {title: 'EAS host', cell: (p) => p.eas_host},
            {title: 'Account name', cell: (p) => p.account_name},
            {title: 'Delivery', cell: (p) => p.delivery},
            {title: 'Groups', cell: (p) => (p.groups?.length ? joined(p.groups) : 'everyone')},
            ...(can('admin')
              ? [{title: 'Preview', cell: (p) => h('button', {type: 'button', class: 'small secondary', 'aria-label': `Preview ${p.name}`, onclick: () => showPreview(preview, p)}, 'Preview')}]
              : []),
          ], profiles)
        : h('p', {}, 'No profile yet.'),
    );
  view.main.append(list, preview);
  load();
  if (can('admin')) view.main.append(createProfileSection(load));
}

/** Render a profile for one device and show the text (admin: it makes a fresh challenge). */
function showPreview(box, profile) {
  const listId = newId('devices');
  const options = h('datalist', {id: listId});
  const output = h('div');
  const {form} = actionForm({
    label: `Preview of ${profile.name}`,
    submit: 'Show preview',
    layout: 'filters',
    fields: [field('Device UID', textInput('device', {required: true, list: listId}), `An enrolled ${profile.platform} device.`)],
    run: async (data) => {
      const text = await request(
        'GET',
        `${API}/profiles/${seg(profile.name)}/render${query({device: formText(data, 'device')})}`,
        undefined,
        {as: 'text'},
      );
      fill(
        output,
        h('div', {class: 'pre-wrap', role: 'region', 'aria-label': `Rendered profile ${profile.name}`, tabindex: '0'}, h('pre', {}, text)),
      );
      return 'Rendered.';
    },
  });
  const heading = h('h2', {tabindex: '-1'}, `Preview of ${profile.name}`);
  fill(
    box,
    h(
      'section',
      {class: 'panel'},
      heading,
      h('p', {class: 'hint'}, 'Rendering makes what a download would: a new one-time SCEP challenge, or for PKCS#12 delivery a new key and certificate.'),
      form,
      options,
      output,
    ),
  );
  heading.focus();
  get('/devices', {platform: profile.platform, limit: 200}).then(
    (page) => options.append(...(page?.items ?? []).map((d) => h('option', {value: d.uid}, `${d.user} (${d.state})`))),
    () => {},
  );
}

function createProfileSection(created) {
  const templateSelect = selectInput('template', [], {required: true});
  getAll('/templates').then(
    (list) => templateSelect.append(...list.map((t) => h('option', {value: t.name}, t.name))),
    () => {},
  );
  const {form} = actionForm({
    label: 'Create profile',
    submit: 'Create profile',
    fields: [
      field('Name', textInput('name', {required: true})),
      field('Platform', selectInput('platform', ['ios', 'android'])),
      field('Template', templateSelect),
      field('EAS host', textInput('eas_host', {required: true}), 'The gateway’s host name, e.g. mail.corp.example.'),
      field('Account name', textInput('account_name', {required: true}), 'What the phone calls the account.'),
      field('Delivery', selectInput('delivery', [['scep', 'scep (the phone makes its key)'], ['pkcs12', 'pkcs12 (the server makes the key)'], ['pkcs12-legacy', 'pkcs12-legacy']])),
      field('Groups', textInput('groups'), 'Optional, comma separated: only these groups’ users get it.'),
    ],
    run: async (data, formEl) => {
      const profile = await send('POST', '/profiles', {
        name: formText(data, 'name'),
        platform: formText(data, 'platform'),
        template: formText(data, 'template'),
        eas_host: formText(data, 'eas_host'),
        account_name: formText(data, 'account_name'),
        delivery: formOptional(data, 'delivery'),
        groups: splitList(formText(data, 'groups')),
      });
      formEl.reset();
      await created();
      return `Profile ${profile.name} created.`;
    },
  });
  return section('Create profile', {}, form);
}

// ---------------------------------------------------------------------------------------------
// Rules: the ordered list, the default action, the editor (admin) and the what-if test

const ACTIONS = ['allow', 'block', 'quarantine'];

function ruleConditions(r) {
  const parts = [
    ['users', r.users],
    ['groups', r.groups],
    ['platforms', r.platforms],
    ['clients', r.clients],
    ['device states', r.device_states],
    ['networks', r.networks],
  ]
    .filter(([, v]) => v?.length)
    .map(([k, v]) => `${k}: ${v.join(', ')}`);
  return parts.length ? parts.join('; ') : 'any request';
}

function rulesPage(view) {
  pageHeading(view, 'Rules');
  view.main.append(intro('The gateway tries the rules in order (lowest priority first); the first that matches decides, else the default action. A device’s override comes before every rule.'));
  const list = h('div');
  const defaults = h('div');
  const warnings = h('div');
  const listMsg = messages();

  async function load() {
    try {
      const page = await get('/rules', {limit: 1000});
      const rules = page?.items ?? [];
      fill(
        list,
        rules.length
          ? dataTable('Access rules in evaluation order', [
              {title: 'Priority', cell: (r) => String(r.priority)},
              {title: 'Name', cell: (r) => r.name},
              {title: 'Action', cell: (r) => badge(r.action)},
              {title: 'Conditions', cell: (r) => ruleConditions(r)},
              ...(can('admin') ? [{title: 'Remove', cell: (r) => removeRuleButton(r)}] : []),
            ], rules)
          : h('p', {}, 'No rule: the default action decides every request.'),
      );
      showDefault(page?.default);
      const notes = page?.warnings ?? [];
      fill(
        warnings,
        notes.length ? section('Warnings', {}, h('ul', {class: 'plain'}, notes.map((w) => h('li', {}, w)))) : '',
      );
    } catch (err) {
      if (err instanceof SessionEnded) return;
      fill(list, loadError(err, load));
    }
  }

  function removeRuleButton(rule) {
    return confirmButton({
      text: 'Remove',
      confirmText: 'Confirm remove',
      label: `Remove rule ${rule.name}`,
      confirmLabel: `Confirm removing rule ${rule.name}`,
      explain: `Press Confirm remove to remove rule ${rule.name}.`,
      className: 'danger small',
      msg: listMsg,
      run: async () => {
        try {
          await send('DELETE', `/rules/${seg(rule.name)}`);
          listMsg.ok(`Rule ${rule.name} removed.`);
          await load();
        } catch (err) {
          listMsg.fail(err);
        }
      },
    });
  }

  const defaultMsg = messages();
  function showDefault(action) {
    const line = h('p', {}, 'When no rule matches: ', badge(action ?? 'block'));
    if (!can('admin')) {
      fill(defaults, line);
      return;
    }
    // The editor is made on demand, so that the page has one field labelled "Action" (the
    // new rule's) until an admin asks to change the default.
    const change = h('button', {type: 'button', class: 'secondary small'}, 'Change default action');
    change.addEventListener('click', () => {
      const {form} = actionForm({
        label: 'Change the default',
        submit: 'Save default',
        layout: 'filters',
        fields: [field('Default action', selectInput('action', ACTIONS, {value: action ?? 'block'}))],
        run: async (data) => {
          const saved = await send('PUT', '/default-action', {action: formText(data, 'action')});
          await load();
          defaultMsg.ok(`Default action saved: ${saved?.action}.`);
          defaults.querySelector('button')?.focus();
        },
      });
      change.replaceWith(form);
      form.querySelector('select')?.focus();
    });
    fill(defaults, line, change);
  }

  view.main.append(
    section('Rules in evaluation order', {className: ''}, listMsg.nodes, list),
    section('Default action', {className: ''}, defaults, defaultMsg.nodes),
    warnings,
  );
  list.append(h('p', {class: 'muted'}, 'Loading…'));
  load();
  if (can('admin')) view.main.append(addRuleSection(load));
  view.main.append(whatIfSection());
}

function addRuleSection(added) {
  const {form} = actionForm({
    label: 'Add rule',
    submit: 'Add rule',
    fields: [
      field('Rule name', textInput('name', {required: true})),
      field('Priority', h('input', {type: 'number', name: 'priority', inputmode: 'numeric'}), 'Lower runs first; empty: after the last rule.'),
      field('Action', selectInput('action', ACTIONS)),
      field('Users', textInput('users'), 'Comma separated UPNs; empty: any user.'),
      field('Groups', textInput('groups'), 'Comma separated; empty: any group.'),
      checkGroup('Platforms', 'platforms', [['ios', 'iOS'], ['android', 'Android'], ['windows', 'Windows'], ['other', 'Other']]),
      checkGroup('Clients', 'clients', [['native', 'Native mail app'], ['outlook', 'Outlook'], ['other', 'Other']]),
      checkGroup('Device states', 'device_states', [['managed', 'Managed'], ['unmanaged', 'Unmanaged']]),
      field('Networks', textInput('networks'), 'Comma separated CIDRs, e.g. 10.0.0.0/8; empty: anywhere.'),
    ],
    run: async (data, formEl) => {
      const rule = await send('POST', '/rules', {
        name: formText(data, 'name'),
        priority: formNumber(data, 'priority'),
        action: formText(data, 'action'),
        users: splitList(formText(data, 'users')),
        groups: splitList(formText(data, 'groups')),
        platforms: data.getAll('platforms').map(String),
        clients: data.getAll('clients').map(String),
        device_states: data.getAll('device_states').map(String),
        networks: splitList(formText(data, 'networks')),
      });
      formEl.reset();
      await added();
      return `Rule ${rule.name} added at priority ${rule.priority}.`;
    },
  });
  return section('Add rule', {}, intro('Empty conditions match anything; a rule matches when all its conditions do.'), form);
}

function whatIfSection() {
  const result = h('div', {role: 'status', 'aria-label': 'What-if result', class: 'what-if-result', hidden: true});
  const {form} = actionForm({
    label: 'What if',
    submit: 'Test',
    fields: [
      field('User', textInput('user', {required: true}), 'A UPN.'),
      field('Platform', selectInput('platform', [['', 'Not given (other)'], 'ios', 'android', 'windows', 'other'])),
      field('Client', selectInput('client', [['', 'Not given (native)'], 'native', 'outlook', 'other'])),
      field('Device state', selectInput('device_state', [['', 'Not given'], 'managed', 'unmanaged'])),
      field('Certificate', selectInput('cert', [['', 'From the device state'], 'valid', 'none', 'revoked', 'expired', 'foreign'])),
      field('IP address', textInput('ip')),
      field('DeviceId', textInput('device_id'), 'For overrides and certificate bindings.'),
    ],
    run: async (data) => {
      result.hidden = true;
      const answer = await send('POST', '/what-if', {
        user: formText(data, 'user'),
        platform: formOptional(data, 'platform'),
        client: formOptional(data, 'client'),
        device_state: formOptional(data, 'device_state'),
        cert: formOptional(data, 'cert'),
        ip: formOptional(data, 'ip'),
        device_id: formOptional(data, 'device_id'),
      });
      fill(result, ...whatIfAnswer(answer));
      result.hidden = false;
    },
  });
  return section('What if', {}, intro('What the gateway would decide for a request, and why. Nothing changes.'), form, result);
}

function whatIfAnswer(a) {
  const lines = String(a?.explanation ?? '').split('\n').map((l) => l.trim()).filter(Boolean);
  return [
    h('p', {class: 'decision'}, `Decision: ${a?.action ?? 'unknown'}`),
    h('p', {}, `Matched rule: ${a?.rule ?? a?.matched ?? 'none'}`),
    lines.length ? h('ul', {class: 'plain'}, lines.map((l) => h('li', {}, l))) : null,
    props([
      ['Decided by', a?.matched],
      a?.refusal ? ['Refusal', a.refusal] : null,
      ['User', a?.user],
      ['Groups', joined(a?.groups)],
      ['Platform', a?.platform],
      ['Client', a?.client],
      ['Device state', a?.device_state],
      ['Certificate', a?.cert],
      a?.suspect ? ['Suspect', 'yes: the DeviceId is bound to a certificate and the request has none; no override applies'] : null,
    ]),
    a?.warnings?.length ? h('ul', {class: 'plain'}, a.warnings.map((w) => h('li', {}, `Warning: ${w}`))) : null,
  ];
}

// ---------------------------------------------------------------------------------------------
// Audit

function auditPage(view) {
  pageHeading(view, 'Audit');
  view.main.append(intro('Every change, sign-in and refusal, oldest first.'));
  const filters = {since: '24h', actor: '', action: '', subject: ''};
  const table = pagedTable({
    label: 'Audit events',
    empty: 'No event matches.',
    load: (cursor) => get('/audit', {...filters, limit: 100, cursor}),
    columns: [
      {title: 'Time', cell: (e) => when(e.at)},
      {title: 'Actor', cell: (e) => e.actor},
      {title: 'Action', cell: (e) => e.action},
      {title: 'Subject', cell: (e) => e.target},
      {title: 'Detail', cell: (e) => e.detail},
    ],
  });
  const {form} = actionForm({
    label: 'Filter audit events',
    submit: 'Filter',
    layout: 'filters',
    buttonClass: 'secondary',
    fields: [
      field('Since', textInput('since', {value: filters.since}), 'e.g. 24h, 7d or 2026-12-01T00:00:00Z; empty: from the start.'),
      field('Actor', textInput('actor'), 'e.g. token:intune, gateway'),
      field('Action', textInput('action'), 'e.g. cert.revoke, or gateway for all gateway.*'),
      field('Subject', textInput('subject'), 'A device, serial, user, rule…'),
    ],
    run: async (data) => {
      for (const key of Object.keys(filters)) filters[key] = formText(data, key);
      await table.first();
    },
  });
  view.main.append(form, table.el);
  table.first();
}

// ---------------------------------------------------------------------------------------------
// Doctor

const CHECK_WORDS = {ok: 'pass', fail: 'fail', skip: 'skipped'};

function doctorPage(view) {
  pageHeading(view, 'Doctor');
  view.main.append(intro('Every setup check, as `easgate doctor` runs them, with the fix for what fails.'));
  const status = h('p', {role: 'status'});
  const box = h('div');
  const again = actionButton('Run again', () => run(), {class: 'secondary'});
  view.main.append(h('div', {class: 'actions'}, again), status, box);

  async function run() {
    status.textContent = 'Running setup checks…';
    try {
      const report = await get('/doctor');
      const checks = report?.checks ?? [];
      const failing = checks.filter((c) => c.status === 'fail' || c.ok === false).length;
      status.textContent = failing
        ? `${failing} of ${checks.length} setup check${checks.length === 1 ? '' : 's'} fail${failing === 1 ? 's' : ''}.`
        : 'All setup checks pass.';
      fill(
        box,
        checks.length
          ? dataTable('Setup checks', [
              {title: 'Check', cell: (c) => c.name},
              {title: 'Result', cell: (c) => badge(CHECK_WORDS[c.status] ?? c.status ?? (c.ok ? 'pass' : 'fail'))},
              {title: 'Detail', cell: (c) => c.detail},
              {title: 'Fix', cell: (c) => c.fix},
            ], checks)
          : h('p', {}, 'No check ran.'),
      );
    } catch (err) {
      if (err instanceof SessionEnded) return;
      status.textContent = 'The setup checks did not run.';
      fill(box, loadError(err));
    }
  }
  run();
}

// ---------------------------------------------------------------------------------------------
// Enroll (a role that may enroll but not read: enroller)

function enrollPage(view) {
  pageHeading(view, 'Enroll a device');
  view.main.append(
    h('p', {}, `Your role (${state.session.role}) may enroll devices and nothing else here: the other pages need a role that may read.`),
    enrollForm({level: 2, title: 'New enrollment'}),
  );
}

// ---------------------------------------------------------------------------------------------
// Pages that are not there

function notFoundPage(view) {
  pageHeading(view, 'Page not found');
  view.main.append(h('p', {}, 'The console has no such page. ', h('a', {href: `#/${defaultPath()}`}, 'Go to the start page'), '.'));
}

function notAllowedPage(view) {
  pageHeading(view, 'Not available');
  view.main.append(
    h('p', {}, `Your role (${state.session.role}) may not use this page. `, h('a', {href: `#/${defaultPath()}`}, 'Go to the start page'), '.'),
  );
}

// ---------------------------------------------------------------------------------------------
// Start

function start() {
  window.addEventListener('hashchange', () => route({focus: true}));
  byId('sign-out').addEventListener('click', signOut);
  // The skip link moves the focus to the page; it must not change the hash the router reads.
  document.querySelector('.skip-link')?.addEventListener('click', (event) => {
    event.preventDefault();
    byId('main').focus();
  });
  resume();
}

start();
