// The JSON REST API (contract §2): one fetch wrapper that adds the bearer token
// and turns `{"error":{"code","message"}}` replies into ApiError.

export class ApiError extends Error {
  /** `detail`: the whole `error` object (e.g. `categories`, `until`, `reason`). */
  constructor(status, code, message, detail = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.detail = detail;
  }
}

/** Called with the ApiError when the server says the caller is banned. */
let onBanned = null;
export function setBannedHandler(fn) {
  onBanned = fn;
}

let token = localStorage.getItem("qt.token");

export function getToken() {
  return token;
}

export function setToken(t) {
  token = t;
  if (t) localStorage.setItem("qt.token", t);
  else localStorage.removeItem("qt.token");
}

export async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let res;
  try {
    res = await fetch(`/api/v1${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new ApiError(0, "network", String(e));
  }
  const text = await res.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!res.ok) {
    const err = data && data.error;
    const e = new ApiError(res.status, err ? err.code : "http_" + res.status, err ? err.message : res.statusText, err || {});
    // Seconds to wait before retrying (429 carries `Retry-After`).
    const retry = Number(res.headers.get("Retry-After"));
    if (retry > 0) e.retryAfter = retry;
    if (e.code === "banned" && onBanned) onBanned(e);
    throw e;
  }
  return data;
}

export const Api = {
  guest: (nickname) => api("POST", "/auth/guest", nickname ? { nickname } : {}),
  login: (username, password) => api("POST", "/auth/login", { username, password }),
  signup: (username, password, display_name) =>
    api("POST", "/auth/signup", display_name ? { username, password, display_name } : { username, password }),
  me: () => api("GET", "/me"),
  user: (id) => api("GET", `/users/${id}`),
  userByName: (username) => api("GET", `/users/by-username/${encodeURIComponent(username)}`),
  // People (contract §7).
  updateMe: (changes) => api("PATCH", "/me", changes),
  upgrade: (username, password) => api("POST", "/auth/upgrade", { username, password }),
  friends: () => api("GET", "/friends"),
  friendRequests: () => api("GET", "/friends/requests"),
  friendRequest: (user_id) => api("POST", "/friends/requests", { user_id }),
  acceptRequest: (id) => api("POST", `/friends/requests/${id}/accept`),
  declineRequest: (id) => api("POST", `/friends/requests/${id}/decline`),
  cancelRequest: (id) => api("DELETE", `/friends/requests/${id}`),
  unfriend: (userId) => api("DELETE", `/friends/${userId}`),
  direct: (user_id) => api("POST", "/direct", { user_id }),
  blocks: () => api("GET", "/blocks"),
  block: (user_id) => api("POST", "/blocks", { user_id }),
  unblock: (userId) => api("DELETE", `/blocks/${userId}`),
  // Group and direct rooms only: random chats are not listed in the sidebar, and
  // the server filters them out before its page limit.
  rooms: () => api("GET", "/rooms?kind=group,direct"),
  room: (id) => api("GET", `/rooms/${id}`),
  createRoom: (name, visibility, moderation) => api("POST", "/rooms", { name, visibility, moderation }),
  setRoomPolicy: (id, moderation) => api("PATCH", `/rooms/${id}`, { moderation }),
  join: (id) => api("POST", `/rooms/${id}/join`),
  leave: (id) => api("POST", `/rooms/${id}/leave`),
  members: (id) => api("GET", `/rooms/${id}/members`),
  messages: (id, params) => {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params || {})) if (v !== undefined && v !== null) q.set(k, String(v));
    const qs = q.toString();
    return api("GET", `/rooms/${id}/messages${qs ? "?" + qs : ""}`);
  },
  read: (id, seq) => api("POST", `/rooms/${id}/read`, { seq }),
  // History search (contract §9): `{q, room_id?, limit?, cursor?}`, newest first.
  search: (params) => {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params || {})) if (v !== undefined && v !== null) q.set(k, String(v));
    return api("GET", `/search?${q}`);
  },
  // Push notifications (contract §8).
  pushKey: () => api("GET", "/push/key"),
  pushSubscribe: (subscription) => api("POST", "/push/subscriptions", subscription),
  pushUnsubscribe: (endpoint) => api("DELETE", "/push/subscriptions", { endpoint }),
  notificationLevel: (id) => api("GET", `/rooms/${id}/notifications`),
  setNotificationLevel: (id, level) => api("PUT", `/rooms/${id}/notifications`, { level }),
  matchState: () => api("GET", "/match"),
  report: (room_id, reason) => api("POST", "/match/report", { room_id, reason }),
  reportMessage: (id, reason) => api("POST", `/messages/${id}/report`, { reason }),
  // Moderators and admins only (contract §5).
  queue: (params) => api("GET", `/admin/queue?${new URLSearchParams(params)}`),
  resolve: (id, resolution) => api("POST", `/admin/queue/${id}/resolve`, resolution ? { resolution } : {}),
  ban: (userId, reason, until) => api("POST", `/admin/users/${userId}/ban`, until ? { reason, until } : { reason }),
  unban: (userId) => api("DELETE", `/admin/users/${userId}/ban`),
  bans: () => api("GET", "/admin/bans"),
  deleteMessage: (id) => api("DELETE", `/admin/messages/${id}`),
};

/** Whether a user JSON may use the moderator tools. */
export function moderates(user) {
  return !!user && (user.role === "moderator" || user.role === "admin");
}
