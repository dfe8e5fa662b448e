import { fireEvent, render, screen } from '@testing-library/react-native';
import * as SecureStore from 'expo-secure-store';

import App from '../App';
import { pickPhotos } from '../src/components/pickPhotos';
import { FakeXHR, installFakeXHR } from '../test-utils/http';

jest.mock('expo-secure-store', () => {
  const store = new Map<string, string>();
  return {
    getItemAsync: jest.fn(async (key: string) => store.get(key) ?? null),
    setItemAsync: jest.fn(async (key: string, value: string) => void store.set(key, value)),
    __store: store,
  };
});
jest.mock('../src/components/pickPhotos', () => ({ pickPhotos: jest.fn() }));
const store = (SecureStore as unknown as { __store: Map<string, string> }).__store;

beforeEach(() => store.clear());

test('first start opens Settings; saving stores the settings in the secure store', async () => {
  await render(<App />);
  expect(await screen.findByText('Gateway address')).toBeTruthy();
  expect(screen.getByRole('tab', { name: 'Settings' })).toBeSelected();
  await fireEvent.changeText(screen.getByLabelText('Gateway address'), ' https://gw.example.org ');
  await fireEvent.changeText(screen.getByLabelText('API key'), 'key-1');
  await fireEvent.press(screen.getByRole('button', { name: 'Save settings' }));
  expect(JSON.parse(store.get('gateway_settings')!)).toEqual({
    baseUrl: 'https://gw.example.org',
    apiKey: 'key-1',
    enrolKey: '',
  });
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

test('enrolling sends the enrol key, searching the search key', async () => {
  installFakeXHR();
  const photo = { uri: 'file:///a.jpg', name: 'a.jpg', type: 'image/jpeg' };
  (pickPhotos as jest.Mock).mockResolvedValue({ kind: 'picked', photos: [photo] });
  const settings = { baseUrl: 'https://gw.example.org', apiKey: 'search-1', enrolKey: 'enrol-1' };
  store.set('gateway_settings', JSON.stringify(settings));
  await render(<App />);
  await fireEvent.press(await screen.findByRole('button', { name: 'Choose a photo from the library' }));
  await fireEvent.press(await screen.findByRole('button', { name: 'Search for this face' }));
  expect(FakeXHR.last!.url).toBe('https://gw.example.org/v1/match');
  expect(FakeXHR.last!.headers['X-API-Key']).toBe('search-1');
  await fireEvent.press(screen.getByRole('tab', { name: 'Enrol' }));
  await fireEvent.changeText(screen.getByLabelText('Name (required)'), 'Ana');
  await fireEvent.press(screen.getByRole('button', { name: 'Add photos from the library' }));
  await fireEvent.press(screen.getByRole('button', { name: 'Enrol this person' }));
  expect(FakeXHR.last!.url).toBe('https://gw.example.org/v1/persons');
  expect(FakeXHR.last!.headers['X-API-Key']).toBe('enrol-1');
});
