// Every user-visible string, in English and Korean. `t(key, vars)` looks a key up
// in the current language; `{name}` placeholders are filled from `vars`.

const STRINGS = {
  en: {
    app_name: "QuickTalk",
    tagline: "Fast, anonymous when you want it.",
    language: "Language",
    lang_en: "English",
    lang_ko: "한국어",
    // entry
    tab_guest: "Guest",
    tab_login: "Log in",
    tab_signup: "Sign up",
    guest_title: "Chat right away",
    guest_hint: "No account needed. Pick a nickname or stay anonymous.",
    nickname: "Nickname (optional)",
    continue_guest: "Continue as guest",
    username: "Username",
    password: "Password",
    display_name: "Display name (optional)",
    login: "Log in",
    signup: "Create account",
    username_hint: "3–32 letters, digits, _ . -",
    password_hint: "At least 8 characters",
    logout: "Log out",
    signed_in_as: "Signed in as {name}",
    guest_badge: "guest",
    // marks a guest's name in messages, members and profiles (issue 10)
    guest_tag: "Guest",
    profile: "Profile",
    profile_guest_note: "Guest: not a registered account",
    profile_close: "Close",
    // connection
    status_connecting: "Connecting…",
    status_live: "Live",
    status_reconnecting: "Reconnecting…",
    status_offline: "Offline",
    // navigation
    random_chat: "Random chat",
    random_sub: "Meet someone new",
    rooms: "Rooms",
    no_rooms: "No rooms yet. Create the first one!",
    create_room: "New room",
    room_name: "Room name",
    visibility: "Who can join",
    public: "Public",
    private: "Private",
    create: "Create",
    cancel: "Cancel",
    back: "Back",
    members_count: "{n} members",
    members_count_one: "{n} member",
    unread_label: "{n} unread",
    no_messages_yet: "No messages yet",
    private_badge: "private",
    // chat
    join: "Join room",
    join_to_write: "Join this room to write.",
    leave: "Leave",
    members: "Members",
    online: "online",
    offline: "offline",
    message_placeholder: "Write a message…",
    message_label: "Message",
    send: "Send",
    chars: "{n} / {max}",
    too_long: "Too long",
    loading_older: "Loading older messages…",
    start_of_history: "This is the start of the conversation.",
    joined: "{name} joined",
    left: "{name} left",
    typing_single: "{name} is typing…",
    typing_many: "{names} are typing…",
    pending: "sending…",
    failed: "not sent: {reason}",
    retry: "Retry",
    new_messages: "New messages",
    you: "You",
    pick_room: "Pick a room, or start a random chat.",
    // random chat
    random_title: "Random chat",
    random_intro: "You will be paired with a random stranger. Be kind.",
    interests: "Interests (optional, comma separated)",
    interests_placeholder: "music, games, travel",
    chat_language: "Chat language",
    any_language: "Any",
    connect: "Connect",
    looking: "Looking for someone…",
    looking_hint: "People with the same interests are preferred for a few seconds.",
    stop: "Stop",
    matched_with: "You are chatting with {name}",
    next: "Next",
    disconnect: "Disconnect",
    report: "Report",
    report_reason: "Why are you reporting this person?",
    report_send: "Send report",
    reported: "Thanks. You will not be matched with this person again.",
    ended_partner_left: "{name} left the chat.",
    ended_partner_disconnected: "{name}'s connection dropped.",
    ended_you_left: "You left the chat.",
    find_new: "Find someone new",
    // errors
    error_generic: "Something went wrong: {message}",
    error_network: "Cannot reach the server.",
    rate_limited: "Slow down a little.",
    // why a message was not sent (error codes)
    err_outcome_unknown: "could not confirm it was delivered",
    err_moderated: "blocked by moderation",
    err_rate_limited: "you are sending too fast",
    err_invalid_text: "it contains characters that cannot be sent",
    err_empty_text: "the message is empty",
    err_too_large: "the message is too long",
    err_not_member: "you are not a member of this room",
    err_unstorable: "the message cannot be stored",
    err_unavailable: "the server is busy; try again",
    err_name_taken: "this name looks like another user's name; choose another",
  },
  ko: {
    app_name: "QuickTalk",
    tagline: "빠르게, 원하면 익명으로.",
    language: "언어",
    lang_en: "English",
    lang_ko: "한국어",
    tab_guest: "게스트",
    tab_login: "로그인",
    tab_signup: "회원가입",
    guest_title: "바로 대화하기",
    guest_hint: "계정이 없어도 됩니다. 닉네임을 정하거나 익명으로 시작하세요.",
    nickname: "닉네임 (선택)",
    continue_guest: "게스트로 시작",
    username: "아이디",
    password: "비밀번호",
    display_name: "표시 이름 (선택)",
    login: "로그인",
    signup: "계정 만들기",
    username_hint: "3–32자, 영문·숫자·_ . -",
    password_hint: "8자 이상",
    logout: "로그아웃",
    signed_in_as: "{name}(으)로 로그인됨",
    guest_badge: "게스트",
    guest_tag: "게스트",
    profile: "프로필",
    profile_guest_note: "게스트: 가입하지 않은 사용자입니다",
    profile_close: "닫기",
    status_connecting: "연결 중…",
    status_live: "연결됨",
    status_reconnecting: "다시 연결 중…",
    status_offline: "오프라인",
    random_chat: "랜덤 채팅",
    random_sub: "새로운 사람 만나기",
    rooms: "채팅방",
    no_rooms: "아직 채팅방이 없습니다. 첫 번째 방을 만들어 보세요!",
    create_room: "새 채팅방",
    room_name: "방 이름",
    visibility: "참여 가능",
    public: "공개",
    private: "비공개",
    create: "만들기",
    cancel: "취소",
    back: "뒤로",
    members_count: "멤버 {n}명",
    unread_label: "읽지 않음 {n}",
    no_messages_yet: "아직 메시지가 없습니다",
    private_badge: "비공개",
    join: "참여하기",
    join_to_write: "메시지를 보내려면 이 방에 참여하세요.",
    leave: "나가기",
    members: "멤버",
    online: "접속 중",
    offline: "오프라인",
    message_placeholder: "메시지를 입력하세요…",
    message_label: "메시지",
    send: "보내기",
    chars: "{n} / {max}",
    too_long: "너무 깁니다",
    loading_older: "이전 메시지를 불러오는 중…",
    start_of_history: "대화의 시작입니다.",
    joined: "{name}님이 들어왔습니다",
    left: "{name}님이 나갔습니다",
    typing_single: "{name}님이 입력 중…",
    typing_many: "{names}님이 입력 중…",
    pending: "보내는 중…",
    failed: "전송 실패: {reason}",
    retry: "다시 시도",
    new_messages: "새 메시지",
    you: "나",
    pick_room: "채팅방을 고르거나 랜덤 채팅을 시작하세요.",
    random_title: "랜덤 채팅",
    random_intro: "무작위 상대와 연결됩니다. 서로 존중해 주세요.",
    interests: "관심사 (선택, 쉼표로 구분)",
    interests_placeholder: "음악, 게임, 여행",
    chat_language: "대화 언어",
    any_language: "상관없음",
    connect: "연결",
    looking: "상대를 찾는 중…",
    looking_hint: "처음 몇 초 동안은 관심사가 같은 사람을 먼저 찾습니다.",
    stop: "그만하기",
    matched_with: "{name}님과 대화 중",
    next: "다음 상대",
    disconnect: "대화 종료",
    report: "신고",
    report_reason: "신고 사유를 적어 주세요.",
    report_send: "신고하기",
    reported: "신고가 접수되었습니다. 이 사람과는 다시 연결되지 않습니다.",
    ended_partner_left: "{name}님이 대화를 나갔습니다.",
    ended_partner_disconnected: "{name}님의 연결이 끊어졌습니다.",
    ended_you_left: "대화를 나왔습니다.",
    find_new: "새 상대 찾기",
    error_generic: "문제가 생겼습니다: {message}",
    error_network: "서버에 연결할 수 없습니다.",
    rate_limited: "조금 천천히 해 주세요.",
    err_outcome_unknown: "전송 여부를 확인하지 못했습니다",
    err_moderated: "운영 정책에 따라 차단되었습니다",
    err_rate_limited: "너무 빠르게 보내고 있습니다",
    err_invalid_text: "보낼 수 없는 문자가 들어 있습니다",
    err_empty_text: "메시지가 비어 있습니다",
    err_too_large: "메시지가 너무 깁니다",
    err_not_member: "이 방의 멤버가 아닙니다",
    err_unstorable: "메시지를 저장할 수 없습니다",
    err_unavailable: "서버가 바쁩니다. 다시 시도해 주세요",
    err_name_taken: "다른 사용자의 이름과 비슷합니다. 다른 이름을 골라 주세요",
  },
};

export const LANGUAGES = ["en", "ko"];

let current = "en";

/** The language from the saved choice, else the browser's, else English. */
export function initialLanguage() {
  const saved = localStorage.getItem("qt.lang");
  if (LANGUAGES.includes(saved)) return saved;
  for (const l of navigator.languages || [navigator.language || "en"]) {
    const base = String(l).toLowerCase().split("-")[0];
    if (LANGUAGES.includes(base)) return base;
  }
  return "en";
}

export function setLanguage(lang) {
  current = LANGUAGES.includes(lang) ? lang : "en";
  localStorage.setItem("qt.lang", current);
  document.documentElement.lang = current;
  document.title = STRINGS[current].app_name;
}

export function language() {
  return current;
}

/** The BCP 47 locale for dates and numbers. */
export function locale() {
  const nav = navigator.language || "en";
  return nav.toLowerCase().startsWith(current) ? nav : current === "ko" ? "ko-KR" : "en";
}

export function t(key, vars = {}) {
  // Plural forms: `key_one` when the language says `n` is singular (English only).
  if (typeof vars.n === "number" && new Intl.PluralRules(current).select(vars.n) === "one" && `${key}_one` in STRINGS[current]) {
    key = `${key}_one`;
  }
  const s = STRINGS[current][key] ?? STRINGS.en[key] ?? key;
  return s.replace(/\{(\w+)\}/g, (_, k) => (k in vars ? String(vars[k]) : `{${k}}`));
}

/** The reason an error event gives, in the user's language when its code is known. */
export function errorText(err) {
  const key = `err_${err.code}`;
  return key in STRINGS[current] ? t(key) : err.message || err.code || "";
}

/** For tests: both dictionaries must have the same keys. */
export function missingKeys() {
  // Korean has no plural forms: `_one` variants are English-only.
  const en = Object.keys(STRINGS.en).filter((k) => !k.endsWith("_one"));
  const ko = Object.keys(STRINGS.ko);
  return {
    ko: en.filter((k) => !ko.includes(k)),
    en: ko.filter((k) => !en.includes(k)),
  };
}
