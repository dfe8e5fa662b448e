import { fireEvent, render, screen } from '@testing-library/react-native';
import * as SecureStore from 'expo-secure-store';

import App from '../App';

jest.mock('expo-secure-store', () => {
  const store = new Map<string, string>();
  return {
    getItemAsync: jest.fn(async (key: string) => store.get(key) ?? null),
    setItemAsync: jest.fn(async (key: string, value: string) => void store.set(key, value)),
    __store: store,
  };
});
const store = (SecureStore as unknown as { __store: Map<string, string> }).__store;

beforeEach(() => store.clear());

test('first start opens Settings; saving stores the settings in the secure store', async () => {
  await render(<App />);
  expect(await screen.findByText('Gateway address')).toBeTruthy();
  expect(screen.getByRole('tab', { name: 'Settings' })).toBeSelected();
  await fireEvent.changeText(screen.getByLabelText('Gateway address'), ' https://gw.example.org ');
  await fireEvent.changeText(screen.getByLabelText('API key'), 'key-1');
  await fireEvent.press(screen.getByRole('button', { name: 'Save settings' }));
  expect(JSON.parse(store.get('gateway_settings')!)).toEqual({ baseUrl: 'https://gw.example.org', apiKey: 'key-1' });
  expect(await screen.findByText('Saved.')).toBeTruthy(); // still on Settings, to check the connection
  expect(screen.getByRole('tab', { name: 'Settings' })).toBeSelected();
});

test('with a saved key the app opens on Search, and the tabs switch screens', async () => {
  store.set('gateway_settings', JSON.stringify({ baseUrl: 'https://gw.example.org', apiKey: 'key-1' }));
  await render(<App />);
  expect(await screen.findByRole('button', { name: 'Choose a photo from the library' })).toBeTruthy();
  expect(screen.queryByLabelText('Name (required)')).toBeNull(); // Enrol is hidden
  await fireEvent.press(screen.getByRole('tab', { name: 'Enrol' }));
  await fireEvent.changeText(screen.getByLabelText('Name (required)'), 'Ana');
  expect(screen.queryByRole('button', { name: 'Choose a photo from the library' })).toBeNull();
  // back and forth: the Enrol form keeps what was typed
  await fireEvent.press(screen.getByRole('tab', { name: 'Search' }));
  expect(screen.getByRole('button', { name: 'Choose a photo from the library' })).toBeTruthy();
  await fireEvent.press(screen.getByRole('tab', { name: 'Enrol' }));
  expect(screen.getByLabelText('Name (required)').props.value).toBe('Ana');
  expect(screen.getByRole('tab', { name: 'Enrol' })).toBeSelected();
});
