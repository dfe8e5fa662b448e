import { useColorScheme } from 'react-native';

export interface Theme {
  dark: boolean;
  background: string;
  card: string;
  text: string;
  muted: string;
  border: string;
  primary: string;
  onPrimary: string;
  danger: string;
  success: string;
  warning: string;
  barTrack: string;
}

const light: Theme = {
  dark: false,
  background: '#f4f5f7',
  card: '#ffffff',
  text: '#111827',
  muted: '#4b5563',
  border: '#d1d5db',
  primary: '#1d4ed8',
  onPrimary: '#ffffff',
  danger: '#b91c1c',
  success: '#047857',
  warning: '#b45309',
  barTrack: '#e5e7eb',
};

const dark: Theme = {
  dark: true,
  background: '#0b0f17',
  card: '#161b26',
  text: '#f3f4f6',
  muted: '#b6bcc8',
  border: '#374151',
  primary: '#60a5fa',
  onPrimary: '#0b0f17',
  danger: '#f87171',
  success: '#34d399',
  warning: '#fbbf24',
  barTrack: '#374151',
};

/** Colours for the system's light or dark mode. */
export function useTheme(): Theme {
  return useColorScheme() === 'dark' ? dark : light;
}

/** Smallest touch target (iOS HIG 44 pt). */
export const TOUCH = 44;
