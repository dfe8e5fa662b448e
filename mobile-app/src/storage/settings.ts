// Where the gateway address and API keys live: the device keychain (expo-secure-store) on phones,
// localStorage on the web (a browser has no secure store). Two keys, least privilege: the search key
// every user has, and an enrol key (only for the people who enrol; optional).
import * as SecureStore from 'expo-secure-store';
import { Platform } from 'react-native';

export interface StoredSettings {
  baseUrl: string;
  /** the search key: searches, history, feedback */
  apiKey: string;
  /** an enrol key, used only to enrol; empty: the search key is tried (and refused) */
  enrolKey: string;
}

const KEY = 'gateway_settings';

/** On the web the app is normally served by the gateway itself: same origin is the default. */
export function defaultBaseUrl(): string {
  if (Platform.OS === 'web' && typeof window !== 'undefined' && window.location?.origin) {
    return window.location.origin;
  }
  return '';
}

function parse(raw: string | null): StoredSettings | null {
  if (!raw) return null;
  try {
    const value = JSON.parse(raw) as Partial<StoredSettings>;
    return {
      baseUrl: String(value.baseUrl ?? ''),
      apiKey: String(value.apiKey ?? ''),
      enrolKey: String(value.enrolKey ?? ''),
    };
  } catch {
    return null;
  }
}

export async function loadSettings(): Promise<StoredSettings> {
  const raw =
    Platform.OS === 'web'
      ? globalThis.localStorage?.getItem(KEY) ?? null
      : await SecureStore.getItemAsync(KEY);
  return parse(raw) ?? { baseUrl: defaultBaseUrl(), apiKey: '', enrolKey: '' };
}

export async function saveSettings(settings: StoredSettings): Promise<void> {
  const raw = JSON.stringify(settings);
  if (Platform.OS === 'web') {
    globalThis.localStorage?.setItem(KEY, raw);
  } else {
    await SecureStore.setItemAsync(KEY, raw);
  }
}
