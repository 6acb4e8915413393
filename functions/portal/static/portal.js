// The download portal: sign in (API key, bearer token, or OIDC authorization code + PKCE), browse the caller's
// scope with /sts credentials and ali-oss listV2, download, share (/sign), batch-sign, upload (multipart).
// No framework, no build step. What the caller signs in with lives in memory and in this tab's sessionStorage
// only (never localStorage, never the URL). Every error is said in words, with the request id.
'use strict';

(() => {
  const STORE_AUTH = 'portal.auth';
  const STORE_LANG = 'portal.lang';
  const STORE_OIDC = 'portal.oidc';
  const STORE_UPLOAD = 'portal.upload.';
  const PAGE_SIZE = 50;
  const STS_MARGIN_MS = 5 * 60 * 1000; // fresh /sts credentials this long before the old ones expire
  const DOWNLOAD_GAP_MS = 700; // between the downloads of a batch

  const MESSAGES = {
    en: {
      skip: 'Skip to content', title: 'Shared files', language: 'Language', signOut: 'Sign out',
      requestId: 'Request id', dismiss: 'Dismiss', signInTitle: 'Sign in',
      signInIntro: 'Use what the owner of these files gave you.', oidcSignIn: 'Sign in with your organisation',
      or: 'or', apiKey: 'API key', signIn: 'Sign in', bearerToken: 'Bearer token', continue: 'Continue',
      storageNote: 'Your sign-in is kept in this tab only and forgotten when it closes.',
      filesTitle: 'Files', refresh: 'Refresh', signSelected: 'Links for selected', selectedCount: '{n} selected',
      noList: 'Listing is not granted here; open a file by its name.', fileName: 'File name (full key)',
      open: 'Download', selectAll: 'Select all', name: 'Name', size: 'Size', modified: 'Modified',
      actions: 'Actions', previous: 'Previous', next: 'Next', page: 'Page {n}', uploadTitle: 'Upload',
      chooseFile: 'File', upload: 'Upload', uploading: 'Uploading {name}', uploaded: '{name} uploaded.',
      batchTitle: 'Links', downloadAll: 'Download one after another', saveCsv: 'Save as CSV',
      shareTitle: 'Share a link', validity: 'Valid for', oneHour: '1 hour', oneDay: '1 day', sevenDays: '7 days',
      proxyLink: 'Link through this site (hides the storage address)', createLink: 'Create link', close: 'Close',
      link: 'Link', copy: 'Copy', copied: 'Link copied.', takeBack: 'Take this link back',
      takenBack: 'Taken back: the link stops working within {seconds} seconds.', download: 'Download', share: 'Share', folder: 'Folder',
      root: 'Home', empty: 'This folder is empty.', loading: 'Loading…', signedInAs: 'Signed in: {who}',
      expiresAt: 'Valid until {when}.',
      clampedCredentials: 'Shorter than asked: the signing credentials do not last longer.',
      clampedV4: 'Shorter than asked: signed URLs last at most 7 days.',
      clampedMax: 'Shorter than asked: this site allows links of at most {seconds} seconds.',
      batchDone: '{count} links, {failed} failed.', redirecting: 'Taking you to sign in…',
      errOutOfScope: 'This file is outside what you may access.',
      errExpired: 'Your sign-in has expired or is not valid. Please sign in again.',
      errMissing: 'This file does not exist (any more).',
      errThrottled: 'Too many requests right now. Please wait a moment and try again.',
      errNotAllowed: 'This is not allowed here: {message}',
      errBadInput: 'The request was refused: {message}',
      errGeneric: 'Something went wrong: {message}',
      errNetwork: 'The service could not be reached. Check your connection and try again.',
      errOidc: 'Sign-in with your organisation failed: {message}',
    },
    'zh-CN': {
      skip: '跳到内容', title: '共享文件', language: '语言', signOut: '退出登录', requestId: '请求 ID',
      dismiss: '关闭', signInTitle: '登录', signInIntro: '请使用文件所有者提供给您的凭据。',
      oidcSignIn: '使用组织账号登录', or: '或', apiKey: 'API 密钥', signIn: '登录', bearerToken: 'Bearer 令牌',
      continue: '继续', storageNote: '登录信息只保存在此标签页中，关闭后即被清除。', filesTitle: '文件',
      refresh: '刷新', signSelected: '为所选文件生成链接', selectedCount: '已选 {n} 个',
      noList: '此处未授予列举权限；请按名称打开文件。', fileName: '文件名（完整路径）', open: '下载',
      selectAll: '全选', name: '名称', size: '大小', modified: '修改时间', actions: '操作', previous: '上一页',
      next: '下一页', page: '第 {n} 页', uploadTitle: '上传', chooseFile: '文件', upload: '上传',
      uploading: '正在上传 {name}', uploaded: '{name} 已上传。', batchTitle: '链接', downloadAll: '逐个下载',
      saveCsv: '保存为 CSV', shareTitle: '分享链接', validity: '有效期', oneHour: '1 小时', oneDay: '1 天',
      sevenDays: '7 天', proxyLink: '通过本站链接（隐藏存储地址）', createLink: '生成链接', close: '关闭',
      link: '链接', copy: '复制', copied: '链接已复制。', takeBack: '收回此链接',
      takenBack: '已收回：该链接将在 {seconds} 秒内失效。', download: '下载', share: '分享', folder: '文件夹',
      root: '首页', empty: '此文件夹为空。', loading: '加载中…', signedInAs: '已登录：{who}',
      expiresAt: '有效期至 {when}。', clampedCredentials: '有效期短于所选：签名凭据的剩余有效期不足。',
      clampedV4: '有效期短于所选：签名 URL 最长有效 7 天。', clampedMax: '有效期短于所选：本站链接最长 {seconds} 秒。',
      batchDone: '共 {count} 个链接，{failed} 个失败。', redirecting: '正在跳转登录…',
      errOutOfScope: '此文件不在您的访问范围内。', errExpired: '您的登录已过期或无效，请重新登录。',
      errMissing: '此文件不存在（或已被删除）。', errThrottled: '当前请求过多，请稍后重试。',
      errNotAllowed: '此处不允许该操作：{message}', errBadInput: '请求被拒绝：{message}',
      errGeneric: '出现错误：{message}', errNetwork: '无法连接到服务，请检查网络后重试。',
      errOidc: '组织账号登录失败：{message}',
    },
  };

  const $ = (id) => document.getElementById(id);
  const state = {
    lang: 'en', config: null, auth: null, sts: null, client: null, root: '', prefix: '', tokens: [null], page: 0,
    next: null, listing: null, selected: new Set(), batch: [], refreshTimer: null, refreshing: null,
    shareKey: null,
  };

  // --- language -----------------------------------------------------------------------------------------------
  function t(key, vars = {}) {
    const text = (MESSAGES[state.lang] || MESSAGES.en)[key] ?? MESSAGES.en[key] ?? key;
    return text.replace(/\{(\w+)\}/g, (_, name) => String(vars[name] ?? ''));
  }

  function chooseLanguage() {
    const stored = sessionStorage.getItem(STORE_LANG);
    if (stored && MESSAGES[stored]) return stored;
    const wanted = navigator.languages || [navigator.language || 'en'];
    return wanted.some((code) => /^zh\b/i.test(code)) && !wanted.slice(0, 1).some((c) => /^en/i.test(c)) ? 'zh-CN' : 'en';
  }

  function applyLanguage() {
    document.documentElement.lang = state.lang;
    document.title = t('title');
    $('language').value = state.lang;
    for (const element of document.querySelectorAll('[data-i18n]')) element.textContent = t(element.dataset.i18n);
    for (const element of document.querySelectorAll('[data-i18n-label]')) {
      element.setAttribute('aria-label', t(element.dataset.i18nLabel));
    }
    if (state.listing) renderListing();
    if (state.batch.length) renderBatch();
    renderWho();
  }

  // --- messages -----------------------------------------------------------------------------------------------
  class ApiError extends Error {
    constructor(status, code, message, requestId) {
      super(message);
      this.status = status;
      this.code = code;
      this.requestId = requestId || '';
    }
  }

  function explain(error) {
    const code = error.code || '';
    const status = error.status || 0;
    const message = error.message || code;
    if (code === 'Oidc') return message; // already in words
    if (error.name === 'TypeError' || code === 'RequestError' || code === 'ConnectionTimeoutError') return t('errNetwork');
    if (['KeyOutsideScope', 'SymlinkOutOfScope', 'AccessDenied'].includes(code)) return t('errOutOfScope');
    if (status === 401 || ['Unauthorized', 'InvalidAccessKeyId', 'SecurityTokenExpired', 'InvalidSecurityToken']
      .includes(code)) return t('errExpired');
    if (status === 404 || ['NoSuchKey', 'NotFound'].includes(code)) return t('errMissing');
    if (status === 429 || status === 503 || ['ServiceUnavailable', 'Throttling'].includes(code)) return t('errThrottled');
    if (status === 403) return t('errNotAllowed', { message });
    if (status >= 400 && status < 500) return t('errBadInput', { message });
    return t('errGeneric', { message });
  }

  function showError(error) {
    $('error-text').textContent = explain(error);
    $('error-request-id').textContent = error.requestId || '-';
    $('error').hidden = false;
    if (error.status === 401 && !(state.auth && state.auth.refreshToken)) showSignIn();
  }

  function hideError() {
    $('error').hidden = true;
  }

  function say(text) {
    $('status').textContent = text;
  }

  // --- the API (same origin) ----------------------------------------------------------------------------------
  function authHeaders() {
    const auth = state.auth;
    if (!auth) return {};
    if (auth.kind === 'apikey') return { 'X-Api-Key': auth.secret };
    if (auth.kind === 'bearer' || auth.kind === 'oidc') return { Authorization: `Bearer ${auth.secret}` };
    return {};
  }

  async function api(method, path, { query, body } = {}, retried = false) {
    const url = path + (query ? `?${new URLSearchParams(query)}` : '');
    const headers = { ...authHeaders(), ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) };
    const response = await fetch(url, {
      method, headers, cache: 'no-store', credentials: 'omit',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    let data = null;
    try { data = await response.json(); } catch { data = null; }
    if (response.status === 401 && !retried && state.auth && state.auth.refreshToken && await refreshSignIn()) {
      return api(method, path, { query, body }, true);
    }
    if (!response.ok) {
      throw new ApiError(response.status, (data && data.code) || `HTTP${response.status}`,
        (data && data.message) || response.statusText, (data && data.requestId) || response.headers.get('x-fc-request-id'));
    }
    return data;
  }

  // --- sign-in ------------------------------------------------------------------------------------------------
  function saveAuth() {
    if (state.auth) sessionStorage.setItem(STORE_AUTH, JSON.stringify(state.auth));
    else sessionStorage.removeItem(STORE_AUTH);
  }

  function base64url(bytes) {
    return btoa(String.fromCharCode(...new Uint8Array(bytes))).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }

  function randomText(size = 32) {
    return base64url(crypto.getRandomValues(new Uint8Array(size)));
  }

  function jwtClaims(token) {
    try {
      const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
      return JSON.parse(new TextDecoder().decode(Uint8Array.from(atob(part), (c) => c.charCodeAt(0))));
    } catch { return null; }
  }

  function redirectUri() {
    return `${location.origin}/`;
  }

  async function discovery() {
    const issuer = state.config.oidc.issuer.replace(/\/+$/, '');
    const response = await fetch(`${issuer}/.well-known/openid-configuration`, { cache: 'no-store', credentials: 'omit' });
    if (!response.ok) throw new ApiError(response.status, 'Discovery', `discovery answered ${response.status}`);
    const provider = await response.json();
    // OpenID Connect Discovery 1.0 section 4.3: the document must name the issuer it was fetched for.
    if ((provider.issuer || '').replace(/\/+$/, '') !== issuer) throw new ApiError(0, 'Discovery', 'issuer mismatch');
    if (!(provider.code_challenge_methods_supported || []).includes('S256')) {
      throw new ApiError(0, 'Discovery', 'the provider does not support PKCE (S256)');
    }
    return provider;
  }

  async function startOidc() {
    try {
      const provider = await discovery();
      const verifier = randomText(48);
      const challenge = base64url(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier)));
      const pending = { verifier, state: randomText(), nonce: randomText(), token: provider.token_endpoint };
      sessionStorage.setItem(STORE_OIDC, JSON.stringify(pending));
      const query = new URLSearchParams({
        response_type: 'code', client_id: state.config.oidc.client_id, redirect_uri: redirectUri(),
        scope: state.config.oidc.scope, state: pending.state, nonce: pending.nonce, code_challenge: challenge,
        code_challenge_method: 'S256',
      });
      say(t('redirecting'));
      location.assign(`${provider.authorization_endpoint}?${query}`);
    } catch (error) {
      showError(new ApiError(error.status || 0, 'Oidc', t('errOidc', { message: error.message })));
    }
  }

  function acceptTokens(tokens, tokenEndpoint) {
    const clientId = state.config.oidc.client_id;
    const audienceOf = (claims) => [].concat((claims && claims.aud) || []);
    // The API wants a token whose audience is its own (JWT_AUDIENCE, the portal's client id): the access token
    // when the provider issues JWT access tokens for it, else the ID token.
    const chosen = [tokens.access_token, tokens.id_token].find((token) => token && audienceOf(jwtClaims(token))
      .includes(clientId)) || tokens.id_token;
    const claims = jwtClaims(chosen) || {};
    state.auth = {
      kind: 'oidc', secret: chosen, subject: claims.sub || '', refreshToken: tokens.refresh_token || null,
      tokenEndpoint, expiresAt: claims.exp ? claims.exp * 1000 : Date.now() + (tokens.expires_in || 3600) * 1000,
    };
    saveAuth();
    scheduleRefresh();
  }

  async function tokenRequest(endpoint, form) {
    const response = await fetch(endpoint, {
      method: 'POST', body: new URLSearchParams(form), cache: 'no-store', credentials: 'omit',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new ApiError(response.status, data.error || 'TokenError', data.error_description || data.error);
    return data;
  }

  async function finishOidc(params) {
    const pending = JSON.parse(sessionStorage.getItem(STORE_OIDC) || 'null');
    sessionStorage.removeItem(STORE_OIDC);
    history.replaceState(null, '', '/'); // the code leaves the address bar (and the history) at once
    if (params.get('error')) throw new ApiError(0, 'Oidc', params.get('error_description') || params.get('error'));
    if (!pending || params.get('state') !== pending.state) throw new ApiError(0, 'Oidc', 'state mismatch');
    const tokens = await tokenRequest(pending.token, {
      grant_type: 'authorization_code', code: params.get('code'), redirect_uri: redirectUri(),
      client_id: state.config.oidc.client_id, code_verifier: pending.verifier,
    });
    if (tokens.id_token && (jwtClaims(tokens.id_token) || {}).nonce !== pending.nonce) {
      throw new ApiError(0, 'Oidc', 'nonce mismatch');
    }
    acceptTokens(tokens, pending.token);
  }

  async function refreshSignIn() {
    const auth = state.auth;
    if (!auth || !auth.refreshToken) return false;
    if (!state.refreshing) {
      state.refreshing = tokenRequest(auth.tokenEndpoint, {
        grant_type: 'refresh_token', refresh_token: auth.refreshToken, client_id: state.config.oidc.client_id,
      }).then((tokens) => { acceptTokens(tokens, auth.tokenEndpoint); return true; })
        .catch(() => false)
        .finally(() => { state.refreshing = null; });
    }
    return state.refreshing;
  }

  function scheduleRefresh() {
    clearTimeout(state.refreshTimer);
    const auth = state.auth;
    if (!auth || !auth.refreshToken || !auth.expiresAt) return;
    const left = auth.expiresAt - Date.now();
    // Well before expiry: a quarter of the lifetime, at most a minute, ahead of it.
    const delay = Math.max(1000, left - Math.min(60000, left / 4));
    state.refreshTimer = setTimeout(() => { refreshSignIn(); }, delay);
  }

  async function signIn(auth) {
    hideError();
    state.auth = auth;
    try {
      await connect();
      saveAuth();
      showFiles();
    } catch (error) {
      state.auth = null;
      saveAuth();
      showError(error);
    }
  }

  function signOut() {
    clearTimeout(state.refreshTimer);
    state.auth = null; state.sts = null; state.client = null; state.listing = null; state.batch = [];
    state.selected.clear();
    saveAuth();
    $('rows').replaceChildren();
    $('batch').hidden = true;
    showSignIn();
  }

  // --- credentials for the browser (/sts) and ali-oss ---------------------------------------------------------
  async function credentials(actions) {
    return api('POST', state.config.api.sts, { body: { actions } });
  }

  async function bestCredentials() {
    // As much as this deployment grants: write (uploads) and list when allowed, read always.
    for (const actions of [['read', 'list', 'write'], ['read', 'list'], ['read']]) {
      try {
        return await credentials(actions);
      } catch (error) {
        if (error.status !== 403 || error.code === 'KeyOutsideScope') throw error;
      }
    }
    return credentials(['read']);
  }

  function isLocalHost(hostname) {
    return hostname === 'localhost' || /^\d+\.\d+\.\d+\.\d+$/.test(hostname) || hostname.startsWith('[');
  }

  function stsInterval(sts) {
    const left = Date.parse(sts.Expiration) - Date.now();
    return Math.max(60000, Number.isFinite(left) ? left - STS_MARGIN_MS : 60000);
  }

  async function connect() {
    const sts = await bestCredentials();
    state.sts = sts;
    state.root = sts.Prefix;
    if (!state.prefix.startsWith(state.root)) {
      state.prefix = state.root;
      state.tokens = [null];
      state.page = 0;
    }
    const endpoint = new URL(sts.Endpoint);
    state.client = new OSS({
      region: `oss-${sts.Region}`, bucket: sts.Bucket, endpoint: sts.Endpoint, secure: endpoint.protocol === 'https:',
      sldEnable: isLocalHost(endpoint.hostname), // the local emulator is addressed path-style
      authorizationV4: true, accessKeyId: sts.AccessKeyId, accessKeySecret: sts.AccessKeySecret,
      stsToken: sts.SecurityToken, refreshSTSTokenInterval: stsInterval(sts),
      refreshSTSToken: async () => {
        const fresh = await credentials(state.sts.Actions);
        state.sts = fresh;
        state.client.options.refreshSTSTokenInterval = stsInterval(fresh);
        return { accessKeyId: fresh.AccessKeyId, accessKeySecret: fresh.AccessKeySecret, stsToken: fresh.SecurityToken };
      },
    });
  }

  // ali-oss renews credentials on a timer only; the store may still refuse them first (a clock that differs, a
  // revoked session): renew once on those answers and try again. A refusal may also reach the page as no answer
  // at all (an error answer without CORS headers is hidden from scripts), so that is retried once too.
  const EXPIRED_CREDENTIALS = ['SecurityTokenExpired', 'InvalidAccessKeyId', 'InvalidSecurityToken'];
  const worthRenewing = (error) => EXPIRED_CREDENTIALS.includes(error.code) || !(error.status > 0);

  async function renewCredentials() {
    const fresh = await credentials(state.sts.Actions);
    state.sts = fresh;
    Object.assign(state.client.options, {
      accessKeyId: fresh.AccessKeyId, accessKeySecret: fresh.AccessKeySecret, stsToken: fresh.SecurityToken,
      refreshSTSTokenInterval: stsInterval(fresh),
    });
    state.client.stsTokenFreshTime = new Date();
  }

  async function withOss(call) {
    try {
      return await call(state.client);
    } catch (error) {
      if (!worthRenewing(error)) throw error;
      await renewCredentials();
      return call(state.client);
    }
  }

  const can = (action) => Boolean(state.sts && state.sts.Actions.includes(action));

  // --- views --------------------------------------------------------------------------------------------------
  function showSignIn() {
    const mode = state.config.auth_mode;
    $('sign-in').hidden = false;
    $('key-form').hidden = mode !== 'apikey';
    $('token-form').hidden = mode !== 'jwt';
    $('oidc-box').hidden = !(mode === 'jwt' && state.config.oidc);
    $('anonymous-form').hidden = mode !== 'none';
    $('sign-out').hidden = true;
    renderWho();
  }

  function showFiles() {
    $('sign-in').hidden = true;
    $('files').hidden = false;
    $('sign-out').hidden = false;
    $('upload').hidden = !can('write');
    $('no-list').hidden = can('list');
    $('open-key').hidden = false;
    if (!$('key-name').value) $('key-name').value = state.root;
    renderWho();
    if (can('list')) list();
    else { state.listing = { folders: [], files: [] }; renderListing(); }
  }

  function renderWho() {
    const who = $('who');
    if (!state.auth || !state.sts) { who.hidden = true; return; }
    who.hidden = false;
    who.textContent = t('signedInAs', { who: `${state.auth.subject ? `${state.auth.subject} · ` : ''}${state.root}` });
  }

  function humanSize(bytes) {
    const units = ['B', 'KB', 'MB', 'GB', 'TB'];
    let value = Number(bytes);
    let unit = 0;
    while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
    return `${unit ? value.toFixed(1) : value} ${units[unit]}`;
  }

  function button(label, onClick, extra = {}) {
    const element = document.createElement('button');
    element.type = 'button';
    element.textContent = label;
    element.addEventListener('click', onClick);
    Object.assign(element, extra);
    return element;
  }

  function cell(className, ...children) {
    const td = document.createElement('td');
    if (className) td.className = className;
    td.append(...children);
    return td;
  }

  async function list() {
    hideError();
    say(t('loading'));
    try {
      const answer = await withOss((client) => client.listV2({
        prefix: state.prefix, delimiter: '/', 'max-keys': PAGE_SIZE,
        ...(state.tokens[state.page] ? { 'continuation-token': state.tokens[state.page] } : {}),
      }));
      state.listing = {
        folders: (answer.prefixes || []).filter((name) => name !== state.prefix),
        files: (answer.objects || []).filter((item) => item.name !== state.prefix),
      };
      state.next = answer.isTruncated ? answer.nextContinuationToken : null;
      say('');
      renderListing();
    } catch (error) {
      say('');
      showError(error);
    }
  }

  function openFolder(prefix) {
    state.prefix = prefix;
    state.tokens = [null];
    state.page = 0;
    state.selected.clear();
    list();
  }

  function renderBreadcrumbs() {
    const nav = $('breadcrumbs');
    const parts = state.prefix.slice(state.root.length).split('/').filter(Boolean);
    const crumbs = [button(t('root'), () => openFolder(state.root))];
    let path = state.root;
    for (const part of parts) {
      path += `${part}/`;
      const target = path;
      crumbs.push(document.createTextNode('/'), button(part, () => openFolder(target)));
    }
    nav.replaceChildren(...crumbs);
  }

  function renderListing() {
    renderBreadcrumbs();
    const rows = [];
    const listing = state.listing || { folders: [], files: [] };
    for (const folder of listing.folders) {
      const tr = document.createElement('tr');
      const name = folder.slice(state.prefix.length);
      tr.append(cell('select'), cell('name', button(`📁 ${name}`, () => openFolder(folder), {
        title: t('folder'),
      })), cell('size', '—'), cell('date', ''), cell('actions'));
      rows.push(tr);
    }
    for (const item of listing.files) {
      const tr = document.createElement('tr');
      tr.dataset.key = item.name;
      const box = document.createElement('input');
      box.type = 'checkbox';
      box.checked = state.selected.has(item.name);
      box.setAttribute('aria-label', item.name);
      box.addEventListener('change', () => {
        if (box.checked) state.selected.add(item.name); else state.selected.delete(item.name);
        renderSelection();
      });
      const name = item.name.slice(state.prefix.length);
      const when = item.lastModified ? new Date(item.lastModified).toLocaleString(state.lang) : '';
      tr.append(cell('select', box), cell('name', name), cell('size', humanSize(item.size)), cell('date', when),
        cell('actions', button(t('download'), () => download(item.name), { className: 'download' }),
          button(t('share'), () => openShare(item.name), { className: 'share' })));
      rows.push(tr);
    }
    if (!rows.length && can('list')) {
      const tr = document.createElement('tr');
      const td = cell('muted', t('empty'));
      td.colSpan = 5;
      tr.append(td);
      rows.push(tr);
    }
    $('rows').replaceChildren(...rows);
    $('prev-page').disabled = state.page === 0;
    $('next-page').disabled = !state.next;
    $('page-number').textContent = can('list') ? t('page', { n: state.page + 1 }) : '';
    renderSelection();
  }

  function renderSelection() {
    const count = state.selected.size;
    $('sign-selected').disabled = count === 0;
    $('selected-count').textContent = count ? t('selectedCount', { n: count }) : '';
    const files = (state.listing && state.listing.files) || [];
    $('select-all').checked = files.length > 0 && files.every((item) => state.selected.has(item.name));
  }

  // --- download, share, batch ---------------------------------------------------------------------------------
  const baseName = (key) => key.slice(key.lastIndexOf('/') + 1) || key;

  function navigateTo(url) {
    const anchor = document.createElement('a');
    anchor.href = url;
    anchor.rel = 'noopener noreferrer';
    document.body.append(anchor);
    anchor.click();
    anchor.remove();
  }

  async function download(key) {
    hideError();
    try {
      const signed = await api('GET', state.config.api.sign, {
        query: { key, expires: '300', disposition: 'attachment', filename: baseName(key) },
      });
      // A link to a missing object would replace this page with the store's XML error: ask first.
      if (state.client) await withOss((client) => client.head(key));
      navigateTo(signed.url);
    } catch (error) {
      showError(error);
    }
  }

  function openShare(key) {
    state.shareKey = key;
    $('share-key').textContent = key;
    $('share-result').hidden = true;
    $('share-revoked').hidden = true;
    $('share-dialog').showModal();
  }

  async function createShare() {
    hideError();
    const body = { key: state.shareKey, expires: Number($('share-validity').value) };
    if ($('share-proxy').checked) body.proxy = true;
    try {
      const signed = await api('POST', state.config.api.sign, { body });
      $('share-url').value = signed.url;
      $('share-expiry').textContent = t('expiresAt', { when: new Date(signed.expires_at).toLocaleString(state.lang) });
      const clamped = $('share-clamped');
      clamped.hidden = !signed.clamped;
      clamped.textContent = signed.clamped ? {
        credentials: t('clampedCredentials'), v4_ceiling: t('clampedV4'),
        configured_max: t('clampedMax', { seconds: signed.expires_in }),
      }[signed.clamp_reason] || signed.clamp_reason : '';
      clamped.dataset.reason = signed.clamp_reason || '';
      $('share-revoke').hidden = !signed.proxy; // only proxy links can be taken back
      $('share-revoked').hidden = true;
      $('share-result').hidden = false;
      $('share-url').focus();
      $('share-url').select();
    } catch (error) {
      $('share-dialog').close();
      showError(error);
    }
  }

  async function revokeShare() {
    hideError();
    try {
      const answer = await api('POST', state.config.api.sign, { body: { revoke: $('share-url').value } });
      $('share-revoke').hidden = true;
      $('share-revoked').textContent = t('takenBack', { seconds: answer.effective_within_seconds });
      $('share-revoked').hidden = false;
    } catch (error) {
      $('share-dialog').close();
      showError(error);
    }
  }

  async function copyShare() {
    const url = $('share-url').value;
    try {
      await navigator.clipboard.writeText(url);
    } catch {
      $('share-url').select();
      document.execCommand('copy');
    }
    say(t('copied'));
  }

  async function signSelected() {
    hideError();
    const keys = [...state.selected];
    try {
      const answer = await api('POST', state.config.api.sign, {
        body: { keys: keys.map((key) => ({ key, filename: baseName(key) })), expires: 3600, disposition: 'attachment' },
      });
      state.batch = answer.results;
      renderBatch();
      say(t('batchDone', { count: answer.count, failed: answer.failed }));
    } catch (error) {
      showError(error);
    }
  }

  function renderBatch() {
    $('batch').hidden = false;
    $('batch-results').replaceChildren(...state.batch.map((result) => {
      const li = document.createElement('li');
      li.dataset.key = result.key;
      if (result.error) {
        li.className = 'failed';
        li.textContent = `${result.key}: ${explain({ ...result.error })}`;
      } else {
        const anchor = document.createElement('a');
        anchor.href = result.url;
        anchor.rel = 'noopener noreferrer';
        anchor.textContent = result.key;
        li.append(anchor, ` — ${new Date(result.expires_at).toLocaleString(state.lang)}`);
      }
      return li;
    }));
  }

  async function downloadAll() {
    for (const result of state.batch.filter((item) => item.url)) {
      navigateTo(result.url);
      await new Promise((resolve) => { setTimeout(resolve, DOWNLOAD_GAP_MS); });
    }
  }

  function csvField(value) {
    let text = String(value ?? '');
    if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`; // a spreadsheet must not run a key as a formula
    return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
  }

  function saveCsv() {
    const lines = [['key', 'url', 'expires_at', 'error'].join(',')];
    for (const result of state.batch) {
      lines.push([result.key, result.url, result.expires_at, result.error && result.error.code].map(csvField).join(','));
    }
    const blob = new Blob([`${lines.join('\r\n')}\r\n`], { type: 'text/csv;charset=utf-8' });
    const anchor = document.createElement('a');
    anchor.href = URL.createObjectURL(blob);
    anchor.download = 'links.csv';
    document.body.append(anchor);
    anchor.click();
    anchor.remove();
    setTimeout(() => URL.revokeObjectURL(anchor.href), 10000);
  }

  // --- upload (multipart, resumable in this tab) --------------------------------------------------------------
  async function upload(file) {
    hideError();
    const key = state.prefix + file.name;
    const marker = `${STORE_UPLOAD}${key}|${file.size}|${file.lastModified}`;
    const saved = JSON.parse(sessionStorage.getItem(marker) || 'null');
    const progress = $('upload-progress');
    $('upload-state').hidden = false;
    $('upload-label').textContent = t('uploading', { name: file.name });
    const show = (fraction) => {
      const percent = Math.round(fraction * 100);
      progress.value = percent;
      $('upload-percent').textContent = `${percent}%`;
    };
    show(0);
    try {
      await state.client.multipartUpload(key, file, {
        partSize: Math.max(100 * 1024, Math.ceil(file.size / 9000)), parallel: 3,
        ...(saved ? { checkpoint: { ...saved, file } } : {}),
        progress: (fraction, checkpoint) => {
          show(fraction);
          if (checkpoint) {
            const { file: _ignored, ...kept } = checkpoint; // a File cannot be stored; it is chosen again on resume
            sessionStorage.setItem(marker, JSON.stringify(kept));
          }
        },
      });
      show(1);
      sessionStorage.removeItem(marker);
      say(t('uploaded', { name: file.name }));
      if (can('list')) await list();
    } catch (error) {
      showError(error);
    }
  }

  // --- wiring -------------------------------------------------------------------------------------------------
  function wire() {
    $('language').addEventListener('change', () => {
      state.lang = $('language').value;
      sessionStorage.setItem(STORE_LANG, state.lang);
      applyLanguage();
    });
    $('error-close').addEventListener('click', hideError);
    $('sign-out').addEventListener('click', signOut);
    $('oidc-sign-in').addEventListener('click', startOidc);
    $('key-form').addEventListener('submit', (event) => {
      event.preventDefault();
      const secret = $('api-key').value.trim();
      $('api-key').value = '';
      signIn({ kind: 'apikey', secret });
    });
    $('token-form').addEventListener('submit', (event) => {
      event.preventDefault();
      const secret = $('bearer-token').value.trim();
      $('bearer-token').value = '';
      const claims = jwtClaims(secret) || {};
      signIn({ kind: 'bearer', secret, subject: claims.sub || '', expiresAt: claims.exp ? claims.exp * 1000 : null });
    });
    $('anonymous-form').addEventListener('submit', (event) => {
      event.preventDefault();
      signIn({ kind: 'none' });
    });
    $('refresh').addEventListener('click', () => (can('list') ? list() : null));
    $('prev-page').addEventListener('click', () => { state.page -= 1; list(); });
    $('next-page').addEventListener('click', () => {
      state.tokens[state.page + 1] = state.next;
      state.page += 1;
      list();
    });
    $('select-all').addEventListener('change', () => {
      for (const item of (state.listing && state.listing.files) || []) {
        if ($('select-all').checked) state.selected.add(item.name); else state.selected.delete(item.name);
      }
      renderListing();
    });
    $('sign-selected').addEventListener('click', signSelected);
    $('download-all').addEventListener('click', downloadAll);
    $('save-csv').addEventListener('click', saveCsv);
    $('share-create').addEventListener('click', createShare);
    $('share-copy').addEventListener('click', copyShare);
    $('share-revoke').addEventListener('click', revokeShare);
    $('open-key').addEventListener('submit', (event) => {
      event.preventDefault();
      const key = $('key-name').value.trim();
      if (key) download(key);
    });
    $('upload-form').addEventListener('submit', (event) => {
      event.preventDefault();
      const file = $('upload-file').files[0];
      if (file) upload(file);
    });
  }

  async function start() {
    state.lang = chooseLanguage();
    wire();
    applyLanguage();
    try {
      const response = await fetch('/portal/config.json', { cache: 'no-store' });
      state.config = await response.json();
    } catch (error) {
      showError(error);
      return;
    }
    const params = new URLSearchParams(location.search);
    if (params.has('code') || params.has('error')) {
      try {
        await finishOidc(params);
      } catch (error) {
        history.replaceState(null, '', '/');
        showError(new ApiError(error.status || 0, 'Oidc', t('errOidc', { message: error.message }), error.requestId));
        showSignIn();
        return;
      }
    } else {
      state.auth = JSON.parse(sessionStorage.getItem(STORE_AUTH) || 'null');
      scheduleRefresh();
    }
    if (state.auth) await signIn(state.auth);
    else showSignIn();
  }

  document.addEventListener('DOMContentLoaded', start);
})();
